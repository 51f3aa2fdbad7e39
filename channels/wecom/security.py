"""The WeCom callback's security rules: signature, timestamp window, replay guard, XML safety, AES.

WeCom signs every callback with ``msg_signature`` = sha1 over the sorted (token, timestamp,
nonce, Encrypt) and encrypts the payload with the account's EncodingAESKey; the payload ends
with the corp id (the same scheme as WeChat's safe mode, with the corp id in place of the app id).
Checks, in order: signature (constant time: wechatpy compares with ``==``), then the timestamp
within 300 s of our clock, then the (timestamp, nonce) pair not used before in this process,
then the outer XML (no DOCTYPE: no entity of any kind, hence no XXE), then decryption with
wechatpy's ``wechatpy.enterprise.crypto.PrpCrypto`` (the real crypto), which also checks the corp
id, then the inner XML under the same rules. Unauthenticated XML never reaches a parser that
resolves entities: channels.wechat.parse_xml drives expat directly and refuses any DOCTYPE.
"""

from __future__ import annotations

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from channels.wechat import BadXml, parse_xml, signature, signature_ok
from core.config import WeComConfig

TIMESTAMP_WINDOW = 300


class Refused(Exception):
    """A callback that must not be processed; ``status`` is the HTTP answer (400 or 403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_query(cfg: WeComConfig, msg_signature: str, timestamp: str, nonce: str, encrypted: str, now: float) -> None:
    """Signature over the encrypted part, then the timestamp window (403 on either)."""
    if not encrypted:
        raise Refused(400, "nothing encrypted")
    if not signature_ok(msg_signature, cfg.token, timestamp, nonce, encrypted):
        raise Refused(403, "bad msg_signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Refused(403, "bad timestamp") from None
    if abs(now - sent_at) > TIMESTAMP_WINDOW:
        raise Refused(403, "timestamp out of window")


def decrypt(cfg: WeComConfig, encrypted: str) -> str:
    """The plaintext of an authenticated Encrypt value (400 when it does not decrypt for this corp)."""
    try:
        crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.corp_id)
        plain: str | bytes = PrpCrypto(crypto.key).decrypt(encrypted, cfg.corp_id)
    except Exception:  # wrong corp id, bad padding, not base64: signed but undecryptable
        raise Refused(400, "cannot decrypt") from None
    return plain.decode("utf-8") if isinstance(plain, bytes) else plain


def outer_encrypt(body: bytes) -> str:
    """The Encrypt element of a callback body (400 on unsafe or malformed XML)."""
    try:
        fields = parse_xml(body)
    except BadXml as exc:
        raise Refused(400, str(exc)) from None
    return fields.get("Encrypt", "")


def inner_fields(plain: str) -> dict[str, str]:
    try:
        return parse_xml(plain.encode("utf-8"))
    except BadXml as exc:
        raise Refused(400, str(exc)) from None


def encrypt_for_test(cfg: WeComConfig, xml: str, nonce: str, timestamp: str) -> tuple[str, str]:
    """(Encrypt, msg_signature) as WeCom sends them: for the local fake and tests."""
    crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.corp_id)
    encrypted = PrpCrypto(crypto.key).encrypt(xml, cfg.corp_id)
    encrypted = encrypted.decode("ascii") if isinstance(encrypted, bytes) else encrypted
    return encrypted, signature(cfg.token, timestamp, nonce, encrypted)


class SeenPairs:
    """(shop, timestamp, nonce) of callbacks already processed in this process, kept while the
    timestamp is inside the window (bounded). A repeat is refused (403): WeCom signs the body, so
    a repeat can only be a replay or a retry of a callback we already acted on."""

    def __init__(self, window: int = TIMESTAMP_WINDOW, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: dict[tuple[str, str, str], int] = {}

    def seen(self, key: tuple[str, str, str]) -> bool:
        return key in self._seen

    def add(self, key: tuple[str, str, str], timestamp: int, now: int) -> None:
        if len(self._seen) >= self.max_entries or len(self._seen) % 1024 == 0:
            self._seen = {k: t for k, t in self._seen.items() if t + self.window >= now}
            while len(self._seen) >= self.max_entries:
                self._seen.pop(next(iter(self._seen)))
        self._seen[key] = timestamp


__all__ = ["Refused", "SeenPairs", "check_query", "decrypt", "encrypt_for_test", "inner_fields", "outer_encrypt"]
