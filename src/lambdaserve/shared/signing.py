"""Manifest signatures with a KMS asymmetric key: joblib is pickle, so only a manifest signed
by a principal allowed to sign may ever name a model file to load.

The signature covers the exact manifest bytes (which carry the model file's sha256), is
stored beside the manifest as `manifest.sig` (and inside the model layer), and is checked with
KMS Verify by every lambdaserve release (deploy, release, promote). No AWS client is built here.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

SIGNATURE_FILE = "manifest.sig"
ALGORITHM: Final = "ECDSA_SHA_256"


class SignatureError(Exception):
    """A manifest that is unsigned, signed by another key, or changed since it was signed."""


@dataclass(frozen=True)
class ManifestSigner:
    """Signs and verifies manifests with one KMS key (ECC_NIST_P256, SIGN_VERIFY)."""

    kms: KMSClient
    key_id: str

    def sign(self, manifest_bytes: bytes) -> bytes:
        """The `manifest.sig` document for these exact manifest bytes."""
        digest = hashlib.sha256(manifest_bytes).digest()
        reply = self.kms.sign(
            KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=ALGORITHM
        )
        document = {
            "key_id": reply["KeyId"],
            "algorithm": ALGORITHM,
            "manifest_sha256": digest.hex(),
            "signature": base64.b64encode(reply["Signature"]).decode(),
        }
        return (json.dumps(document, indent=2) + "\n").encode()

    def verify(self, manifest_bytes: bytes, signature: bytes | None) -> None:
        """Raise SignatureError unless `signature` is this key's signature of these bytes."""
        if not signature:
            raise SignatureError("the manifest is unsigned: publish it with a signing key")
        try:
            document: dict[str, Any] = json.loads(signature)
            raw = base64.b64decode(document["signature"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise SignatureError("manifest.sig is malformed") from None
        digest = hashlib.sha256(manifest_bytes).digest()
        if document.get("manifest_sha256") != digest.hex():
            raise SignatureError("the manifest was changed after it was signed")
        try:
            valid = self.kms.verify(
                KeyId=self.key_id,
                Message=digest,
                MessageType="DIGEST",
                Signature=raw,
                SigningAlgorithm=ALGORITHM,
            )["SignatureValid"]
        except self.kms.exceptions.KMSInvalidSignatureException:
            valid = False
        if not valid:
            raise SignatureError(f"the manifest signature is not valid for key {self.key_id}")
