"""TLS for the control channel: the experiment's certificate, the two SSL contexts, the worker's pin.

The driver makes a self-signed certificate for each experiment (an EC P-256 key that never
leaves its memory but for a moment, encrypted, in a private temporary directory that
``load_cert_chain`` reads). There is no CA: the certificate's SHA-256 fingerprint travels to the
workers with the experiment's secret, and a worker compares it with what the driver presents
before it sends a byte of its own (the TLS handshake aside). Both ends speak TLS 1.3 only.

Only the standard library's ``ssl`` is needed on the workers; ``cryptography`` is imported by
the driver, when it makes the certificate.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import os
import secrets
import socket
import ssl
import tempfile
from dataclasses import dataclass

#: How long the certificate says it is valid. Workers check the pin, not the dates (there is no
#: CA to vouch for them), so an experiment that runs longer keeps working; the dates only say
#: that this certificate is meant for one experiment's life.
VALIDITY = datetime.timedelta(days=1)
#: Bytes of a fingerprint: a SHA-256 digest.
FINGERPRINT_SIZE = 32


@dataclass(frozen=True)
class ServerIdentity:
    """The driver's side: the server context that presents the certificate, and its fingerprint."""

    context: ssl.SSLContext
    fingerprint: bytes


def fingerprint_of(der: bytes) -> bytes:
    """The SHA-256 of a DER certificate: what workers pin."""
    return hashlib.sha256(der).digest()


def describe(fingerprint: bytes) -> str:
    """A fingerprint as people compare them: ``AB:CD:...``, shortened to its first 8 bytes."""
    return ":".join(f"{b:02X}" for b in fingerprint[:8]) + ("..." if len(fingerprint) > 8 else "")


def server_identity() -> ServerIdentity:
    """A fresh key and self-signed certificate, loaded into a TLS 1.3 server context."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "maggy experiment driver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
            .sign(key, hashes.SHA256()))
    password = secrets.token_bytes(32)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.num_tickets = 0  # no resumption: a worker connects once
    # ssl loads keys from files only: the key is written encrypted under a password held in memory
    with tempfile.TemporaryDirectory(prefix="maggy-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(password)))
        context.load_cert_chain(cert_path, key_path, password=password)
    return ServerIdentity(context, fingerprint_of(cert.public_bytes(serialization.Encoding.DER)))


@functools.lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext:
    """The worker's context, shared by its connections: TLS 1.3, no CA and no host name (the pin
    stands for both)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_pin(sock: ssl.SSLSocket, fingerprint: bytes, where: str) -> None:
    """Raise ConnectionError unless the peer of ``sock`` presented the certificate ``fingerprint`` names."""
    der = sock.getpeercert(binary_form=True)
    got = fingerprint_of(der) if der else b""
    if not hmac.compare_digest(got, fingerprint):
        raise ConnectionError(
            f"the maggy driver at {where} presented a certificate with SHA-256 {describe(got) or 'none'}, not this "
            f"experiment's ({describe(fingerprint)}): refusing to talk to it. Another process answers at that "
            "address, or something on the network intercepts the connection.")


def connect(sock: socket.socket, fingerprint: bytes, where: str) -> ssl.SSLSocket:
    """``sock`` (connected, blocking with a timeout) after a TLS handshake with the pinned driver.

    The handshake's timeout is the socket's (TimeoutError); on any failure the socket is closed.
    """
    tls = client_context().wrap_socket(sock, do_handshake_on_connect=False)
    try:
        try:
            tls.do_handshake()
        except ssl.SSLError as exc:  # not a timeout: the peer does not speak TLS, or not ours
            raise ConnectionError(f"the TLS handshake with the maggy driver at {where} failed ({exc}): "
                                  "run the same maggy version on the driver and the executors") from None
        check_pin(tls, fingerprint, where)
    except BaseException:
        tls.close()
        raise
    return tls
