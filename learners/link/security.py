"""Who may talk to a learner: endpoint policy, CurveZMQ keys, and the actor ids keys speak for.

Plain TCP is allowed only on loopback (or ``ipc://`` / ``inproc://``) unless the caller says
``insecure=True`` explicitly; anything else needs CurveZMQ, which authenticates the actor by an
allow-listed public key and encrypts the link. Key files are ZeroMQ's own certificate format
(``zmq.auth.create_certificates``), plain text, never pickled.

The allow-list directory binds each key to one actor id: ``robot-a.key`` admits the key in it and
lets that key speak only as actor ``robot-a`` (:class:`AllowList`). The ZAP handler admits a
connection whose key is listed and stamps every message it carries with the key (ZeroMQ's
``User-Id``); the learner looks the key up again for each message, so a key removed or replaced
in the directory stops speaking at once, whatever connection it holds.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from learners.link.wire import WireError

log = logging.getLogger(__name__)


class InsecureEndpointError(ValueError):
    """A plain-text endpoint that is not on loopback, without an explicit ``insecure`` opt-in."""


class EndpointError(ValueError):
    """An endpoint that is not one ZeroMQ can use, or cannot be bound (its port taken)."""


def check_endpoint(endpoint: str, role: str, bind: bool = False) -> None:
    """Refuse what is not a ZeroMQ endpoint, before a socket thread meets it: ``tcp://HOST:PORT``
    (PORT 1-65535; a learner may bind port 0 or ``*``, any free one), ``ipc://PATH``,
    ``inproc://NAME``."""
    example = "tcp://127.0.0.1:5555"
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise EndpointError(f"{role}: {endpoint!r} is not an endpoint (e.g. {example})")
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        if not rest:
            raise EndpointError(f"{role}: {endpoint!r} names no {scheme} address")
        return
    if scheme != "tcp":
        raise EndpointError(f"{role}: {endpoint!r}: rill speaks tcp://, ipc:// or inproc://, not {scheme}://")
    host, colon, port = rest.rpartition(":")
    if not colon or not host.strip("[]"):
        raise EndpointError(f"{role}: {endpoint!r} needs a host and a port (e.g. {example})")
    free = bind and port in ("*", "0")
    if not free and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise EndpointError(f"{role}: {endpoint!r}: port {port!r} is not a port number (1-65535)")


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


class KeyFileError(ValueError):
    """A CurveZMQ key file or allow-list directory that cannot serve: the message names it."""


@dataclass
class CurveServer:
    """The learner's secret key file and the directory of allow-listed actor public keys; both are
    checked when it is made (a bad one is ``KeyFileError`` or ``FileNotFoundError``)."""

    secret_key_file: Path
    allow_dir: Path

    def __post_init__(self) -> None:
        if not self.secret_key_file or not self.allow_dir:
            raise KeyFileError("CurveZMQ on the learner needs its secret key file and an allow-list "
                               "directory of actors' public keys (--curve-secret with --allow-keys)")
        self.secret_key_file, self.allow_dir = Path(self.secret_key_file), Path(self.allow_dir)
        _load(self.secret_key_file, want_secret=True)
        if self.allow_dir.exists() and not self.allow_dir.is_dir():
            raise KeyFileError(f"allow-list {self.allow_dir} is a file; give the directory that holds "
                               "the actors' public keys (ACTOR_ID.key)")


@dataclass
class CurveClient:
    """An actor's secret key file and the learner's public key file; both are checked when it is
    made (a bad one is ``KeyFileError`` or ``FileNotFoundError``)."""

    secret_key_file: Path
    server_public_key_file: Path

    def __post_init__(self) -> None:
        if not self.secret_key_file or not self.server_public_key_file:
            raise KeyFileError("CurveZMQ on an actor needs its secret key file and the learner's public "
                               "key file (--curve-secret with --learner-key)")
        self.secret_key_file = Path(self.secret_key_file)
        self.server_public_key_file = Path(self.server_public_key_file)
        _load(self.secret_key_file, want_secret=True)
        _load(self.server_public_key_file, want_secret=False)


def _load(path: Path, want_secret: bool) -> tuple[bytes, bytes | None]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CurveZMQ key file {path} does not exist")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise KeyFileError(f"CurveZMQ key file {path}: unreadable ({e})") from e
    if want_secret and not secret:
        raise KeyFileError(f"CurveZMQ key file {path} holds no secret key (use the .key_secret file)")
    return public, secret


class KeysExistError(FileExistsError):
    """A key pair of that name is there already: replacing it locks out whoever holds its public key."""


def generate_keys(directory: Path, name: str, replace: bool = False) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public, to share) and ``NAME.key_secret`` (keep private, mode 0600 from
    its creation on) in ``directory``. An existing pair is ``KeysExistError`` unless ``replace``:
    a learner's new key locks out every actor that trusts the old one, an actor's new key is
    refused by every learner that allows the old one."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    there = [p for p in (directory / f"{name}.key", directory / f"{name}.key_secret") if p.exists()]
    if there and not replace:
        raise KeysExistError(f"{', '.join(map(str, there))}: a key pair named {name!r} exists; replacing it "
                             "locks out every peer that trusts its public key (pass --replace to do so)")
    umask = os.umask(0o077)  # the secret file is never readable by others, not even for a moment
    try:
        public, secret = zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(umask)
    Path(public).chmod(0o644)
    return Path(public), Path(secret)


ALLOW_LIST_POLL_S = 1.0  # how often the learner looks for changed key files
REFUSED_LOG_EVERY_S = 60.0  # a key refused again and again is logged once a minute
_MAX_ACTOR_ID_BYTES = 255  # a ZeroMQ routing id


class AllowListError(ValueError):
    """An allow-list directory that cannot be read as one key per actor id."""


class AllowList:
    """The actors' public keys, one ``ACTOR_ID.key`` file per actor id in ``directory``.

    A key may speak only as the actor id its file is named after. :meth:`actor_of` answers for
    the ZAP handler's thread and the learner's network thread alike (the map is replaced whole,
    never changed in place). :meth:`refresh` reloads the directory when a key file was added,
    removed or rewritten, and returns the actor ids whose key was revoked (removed or replaced).
    At construction a file that is not a public key, or one key in two files, is an error; on a
    reload such a file is logged and admits nobody, so a half-copied file cannot stop a learner.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"CurveZMQ allow-list directory {self.directory} does not exist")
        self._by_key: dict[str, str] = {}  # z85 public key -> actor id
        self._listing: tuple = ()
        self._checked = time.monotonic()
        self._refused_logged: dict[bytes, float] = {}  # (the ZAP thread's)
        self.refresh(strict=True)
        if not self._by_key:
            log.warning("CurveZMQ allow-list %s holds no ACTOR_ID.key file: no actor can connect "
                        "until one is added", self.directory)

    @property
    def actors(self) -> dict[str, str]:
        """actor id -> its z85 public key."""
        return {actor: key for key, actor in self._by_key.items()}

    def actor_of(self, key: str | bytes | None) -> str | None:
        """The actor id ``key`` (z85 text) may speak as, or None if it is not on the list."""
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        return self._by_key.get(key) if key else None

    def check(self, actor_id: str | None, routing: bytes, key: str | None) -> None:
        """Raise :class:`WireError` unless ``key`` (a message's ``User-Id``) is on the list and
        bound to ``actor_id``, the actor id the message uses."""
        owner = self.actor_of(key)
        if owner is None:
            raise WireError("key_revoked", f"the key {(key or '?')[:8]}... of this connection is no "
                                           f"longer on the allow-list {self.directory}")
        if owner != actor_id:
            raise WireError("key_mismatch", f"the key of actor {owner!r} may speak only as {owner!r}, "
                                            f"not as {actor_id or routing!r}")

    def callback(self, domain: str, key: bytes) -> bool:
        """pyzmq's CURVE credentials provider (called in the ZAP handler's thread)."""
        actor = self.actor_of(key)
        if actor is None:
            now = time.monotonic()  # a refused peer retries every 100 ms or so: say it now and then
            if now - self._refused_logged.get(key, -REFUSED_LOG_EVERY_S) >= REFUSED_LOG_EVERY_S:
                if len(self._refused_logged) > 1000:
                    self._refused_logged.clear()
                self._refused_logged[key] = now
                log.warning("CurveZMQ: refused connections with key %s: not in %s",
                            key.decode("ascii", "replace"), self.directory)
        return actor is not None

    def refresh_due(self) -> set[str]:
        """:meth:`refresh` at most every ``ALLOW_LIST_POLL_S`` seconds."""
        now = time.monotonic()
        if now - self._checked < ALLOW_LIST_POLL_S:
            return set()
        self._checked = now
        return self.refresh()

    def refresh(self, *, strict: bool = False) -> set[str]:
        """Reload the directory if its key files changed; the actor ids whose key is gone."""
        try:
            listing = self._list()
        except OSError as e:
            if strict:
                raise
            log.error("CurveZMQ allow-list %s unreadable (%s); keeping the keys loaded before",
                      self.directory, e)
            return set()
        if listing == self._listing:
            return set()
        by_key: dict[str, str] = {}
        files: dict[str, Path] = {}
        for path in sorted(self.directory.glob("*.key")):
            actor = path.name[: -len(".key")]
            try:
                key = self._read(path, actor)
            except AllowListError as e:
                if strict:
                    raise
                log.error("%s; it admits nobody until it is fixed", e)
                continue
            if key in by_key:
                message = (f"CurveZMQ allow-list: {files[key]} and {path} hold the same key; a key "
                           "speaks for one actor id only")
                if strict:
                    raise AllowListError(message)
                log.error("%s: neither admits it until one is removed", message)
                by_key[key] = ""  # bound to nobody, and stays so whatever a third file says
                continue
            by_key[key], files[key] = actor, path
        by_key = {key: actor for key, actor in by_key.items() if actor}
        before = {actor: key for key, actor in self._by_key.items()}
        after = {actor: key for key, actor in by_key.items()}
        revoked = {actor for actor, key in before.items() if after.get(actor) != key}
        added = sorted(actor for actor, key in after.items() if before.get(actor) != key)
        self._by_key, self._listing = by_key, listing
        if revoked:
            log.warning("CurveZMQ allow-list %s: key of %s removed or replaced: revoked",
                        self.directory, ", ".join(sorted(revoked)))
        if added and not strict:
            log.info("CurveZMQ allow-list %s: key of %s added", self.directory, ", ".join(added))
        return revoked

    def _list(self) -> tuple:
        """What a change of the key files changes: names, inodes, sizes and mtimes."""
        out = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".key"):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # removed since the listing was read
                        continue
                    out.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(sorted(out))

    def _read(self, path: Path, actor: str) -> str:
        raw = actor.encode("utf-8", "surrogateescape")
        if not raw or len(raw) > _MAX_ACTOR_ID_BYTES or raw[0] == 0:
            raise AllowListError(f"CurveZMQ key file {path}: {actor!r} is not a usable actor id "
                                 f"(1 to {_MAX_ACTOR_ID_BYTES} bytes, not starting with a zero byte)")
        try:
            public, _ = zmq.auth.load_certificate(path)
        except (ValueError, OSError) as e:
            raise AllowListError(f"CurveZMQ key file {path}: not a public key ({e})") from e
        if not public or len(public) != 40:
            raise AllowListError(f"CurveZMQ key file {path}: no 40-character public-key entry")
        return public.decode("ascii")


def start_authenticator(context: zmq.Context, allow: AllowList):
    """A ZAP handler that admits only keys on ``allow``; each message of a connection carries its
    key as the ``User-Id`` property (z85 text), which :meth:`AllowList.actor_of` maps to the only
    actor id it may use."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context, log=logging.getLogger("rill.zap"))
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=allow)
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
