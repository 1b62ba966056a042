"""Who may talk to a learner: endpoint policy and CurveZMQ keys.

Plain TCP is allowed only on loopback (or ``ipc://`` / ``inproc://``) unless the caller says
``insecure=True`` explicitly; anything else needs CurveZMQ, which authenticates the actor by an
allow-listed public key and encrypts the link. Key files are ZeroMQ's own certificate format
(``zmq.auth.create_certificates``), plain text, never pickled.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

log = logging.getLogger(__name__)


class InsecureEndpointError(ValueError):
    """A plain-text endpoint that is not on loopback, without an explicit ``insecure`` opt-in."""


def is_loopback(endpoint: str) -> bool:
    """True for ``ipc://``, ``inproc://`` and TCP endpoints whose host is a loopback address."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host in ("localhost",):
        return True
    if host in ("*", "0.0.0.0", "::"):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_plaintext_endpoint(endpoint: str, insecure: bool, role: str) -> None:
    if is_loopback(endpoint):
        return
    if not insecure:
        raise InsecureEndpointError(
            f"{role}: refusing plain-text TCP on non-loopback endpoint {endpoint!r}; use CurveZMQ keys "
            "(--curve-secret/--allow-keys or --learner-key) or pass --insecure explicitly")
    log.warning("%s: INSECURE plain-text TCP on %s: anyone who can reach it can send data and read "
                "weights. Use CurveZMQ keys outside a trusted network.", role, endpoint)


@dataclass
class CurveServer:
    """The learner's secret key file and the directory of allow-listed actor public keys."""

    secret_key_file: Path
    allow_dir: Path


@dataclass
class CurveClient:
    """An actor's secret key file and the learner's public key file."""

    secret_key_file: Path
    server_public_key_file: Path


def _load(path: Path, want_secret: bool) -> tuple[bytes, bytes | None]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CurveZMQ key file {path} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise ValueError(f"CurveZMQ key file {path}: unreadable ({e})") from e
    if want_secret and not secret:
        raise ValueError(f"CurveZMQ key file {path} holds no secret key (use the .key_secret file)")
    return public, secret


def generate_keys(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public, to share) and ``NAME.key_secret`` (keep private) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(directory), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def start_authenticator(context: zmq.Context, curve: CurveServer):
    """A ZAP handler that admits only actors whose public key file is in ``curve.allow_dir``."""
    from zmq.auth.thread import ThreadAuthenticator

    allow = Path(curve.allow_dir)
    if not allow.is_dir():
        raise FileNotFoundError(f"CurveZMQ allow-list directory {allow} does not exist")
    auth = ThreadAuthenticator(context, log=logging.getLogger("rill.zap"))
    auth.start()
    auth.configure_curve(domain="*", location=str(allow))
    return auth


def apply_server_curve(sock: zmq.Socket, curve: CurveServer) -> None:
    public, secret = _load(curve.secret_key_file, want_secret=True)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True


def apply_client_curve(sock: zmq.Socket, curve: CurveClient) -> None:
    public, secret = _load(curve.secret_key_file, want_secret=True)
    server_public, _ = _load(curve.server_public_key_file, want_secret=False)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
