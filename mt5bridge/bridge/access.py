"""Who may do what: the operator's control token, the CURVE client keys, and the logins each may speak for.

- The control token is a random secret the bridge writes at its first start into an owner-only file beside the
  journal; `mt5bridge status`, `halt` and `resume` read it and send it with every request. Only the user who
  runs the bridge (or whoever that user hands the file to) can halt, flatten or resume it.
- A client key is a CURVE public certificate (a ``.key`` file, as `mt5bridge keygen --client NAME` writes it)
  in the bridge's client-keys folder. Only a connection made with one of these keys gets through the
  handshake. Its ``logins`` line, when it has one, lists the accounts that key may speak for.
- ``bridge.accounts`` lists the logins the bridge serves at all.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from mt5bridge.config import Config, journal_path

TOKEN_FILE_NAME = "control.token"
CLIENTS_FOLDER_NAME = "clients"
_TOKEN_BYTES = 32
_MIN_TOKEN_CHARS = 32
OWNER_ONLY = os.name != "nt"   # POSIX modes; on Windows the data folder in the user's profile is what guards it


class AccessError(RuntimeError):
    """A token file or a client key that cannot be used as it is; the message says what to change."""


# ---- the control token -----------------------------------------------------------------------------------------

def _from_config(value: str, config_path: str | Path | None) -> Path:
    path = Path(value)
    if path.is_absolute() or config_path is None:
        return path
    return Path(config_path).resolve().parent / path


def control_token_path(cfg: Config, config_path: str | Path | None) -> Path:
    """``bridge.control_token_file``, else ``control.token`` in the journal's folder (the data folder)."""
    if cfg.bridge.control_token_file:
        return _from_config(cfg.bridge.control_token_file, config_path)
    return journal_path(cfg, config_path).parent / TOKEN_FILE_NAME


def ensure_control_token(path: Path) -> str:
    """The token in ``path``; made (random, owner-only) when there is none yet. Refuses one others can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    try:
        # O_EXCL: never write through a file (or a link) someone else put there; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_control_token(path, for_bridge=True)
    except OSError as exc:
        raise AccessError(f"cannot create the control token {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token


def read_control_token(path: Path, *, for_bridge: bool = False) -> str:
    """The token in ``path``. The bridge (``for_bridge``) also refuses a file other users may read or write."""
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise AccessError(f"there is no control token at {path}: the bridge makes it at its first start; "
                          "give the same --config as the bridge, or --token-file") from None
    except PermissionError:
        raise AccessError(f"cannot read the control token {path}: run this as the user who runs the bridge") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessError(f"cannot read the control token {path}: {exc}") from None
    if for_bridge and OWNER_ONLY:
        if info.st_uid != os.geteuid():
            raise AccessError(f"the control token {path} belongs to another user: delete it, and the bridge makes "
                              "a new one at its next start")
        if info.st_mode & 0o077:
            raise AccessError(f"the control token {path} may be read by other users (mode "
                              f"{stat.S_IMODE(info.st_mode):04o}): `chmod 600` it, or delete it and the bridge "
                              "makes a new one at its next start")
    if len(text) < _MIN_TOKEN_CHARS or not text.isascii() or not text.isprintable():
        raise AccessError(f"the control token {path} is not one the bridge made: delete it, and the bridge makes "
                          "a new one at its next start")
    return text


# ---- CURVE client keys ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientKey:
    name: str                       # the certificate's file name without .key
    public_key: str                 # Z85, 40 characters: what the ZAP handler reports as the User-Id
    logins: frozenset[int] | None   # None: any login (that bridge.accounts allows)


def client_keys_folder(cfg: Config, config_path: str | Path | None) -> Path:
    """``bridge.curve_clients_folder``, else the folder ``clients`` beside the bridge's secret key."""
    if cfg.bridge.curve_clients_folder:
        return _from_config(cfg.bridge.curve_clients_folder, config_path)
    return _from_config(cfg.bridge.curve_secret_key_file, config_path).parent / CLIENTS_FOLDER_NAME


_LINE = re.compile(r'^\s*([A-Za-z][\w-]*)\s*=\s*"?([^"]*)"?\s*$')


def read_client_key(path: Path) -> ClientKey:
    """A client's public certificate: its ``public-key`` and, in its metadata, an optional ``logins`` line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessError(f"client key {path}: cannot read it: {exc}") from None
    values = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            values[match.group(1).lower()] = match.group(2).strip()
    if "secret-key" in values:
        raise AccessError(f"client key {path} holds a secret key: only the client's public .key file belongs in "
                          "the bridge's client-keys folder; keep the secret one with the EA")
    public = values.get("public-key", "")
    if len(public) != 40:
        raise AccessError(f"client key {path} has no 40-character public-key line")
    logins = None
    if values.get("logins"):
        try:
            logins = frozenset(int(item) for item in re.split(r"[\s,]+", values["logins"]) if item)
        except ValueError:
            raise AccessError(f"client key {path}: logins = \"{values['logins']}\" is not a list of account "
                              "numbers (e.g. logins = \"1510234567, 1510234568\")") from None
        if not logins or min(logins) <= 0:
            raise AccessError(f"client key {path}: logins must be account numbers above 0")
    return ClientKey(path.stem, public, logins)


def load_client_keys(folder: Path) -> dict[str, ClientKey]:
    """Every ``*.key`` in ``folder``, by its Z85 public key."""
    if not folder.is_dir():
        raise AccessError(f"the client-keys folder {folder} does not exist: make a client key with "
                          "`mt5bridge keygen --client NAME` (or set bridge.curve_clients_folder)")
    keys: dict[str, ClientKey] = {}
    for path in sorted(folder.glob("*.key")):
        key = read_client_key(path)
        if key.public_key in keys:
            raise AccessError(f"client keys {keys[key.public_key].name}.key and {path.name} in {folder} are the "
                              "same key: keep one")
        keys[key.public_key] = key
    if not keys:
        raise AccessError(f"the client-keys folder {folder} holds no client key (*.key): make one with "
                          "`mt5bridge keygen --client NAME`")
    return keys


def write_public_key(path: Path, public_key: str, name: str, logins: list[int] | None = None, *,
                     client: bool = True) -> None:
    """A public certificate, in the format zmq.auth and czmq read; a client's with its logins if limited."""
    if client:
        lines = ["#   ZeroMQ CURVE public certificate of a client of mt5bridge.",
                 "#   The bridge lets in only connections made with a key in its client-keys folder.",
                 "#   logins: the accounts this key may speak for (none: any the bridge serves)."]
    else:
        lines = ["#   ZeroMQ CURVE public certificate of the bridge: every EA gets this key (InpCurveServerKey)."]
    lines += ["metadata", f'    name = "{name}"']
    if logins:
        lines.append(f'    logins = "{", ".join(str(n) for n in logins)}"')
    lines += ["curve", f'    public-key = "{public_key}"', ""]
    with open(path, "x", encoding="utf-8") as f:
        f.write("\n".join(lines))


def write_secret_key(path: Path, public_key: str, secret_key: str, name: str) -> None:
    """A key pair, owner-only from the first byte; never overwrites one."""
    text = "\n".join(["#   ZeroMQ CURVE **secret** certificate: give it to no one.", "metadata",
                      f'    name = "{name}"', "curve", f'    public-key = "{public_key}"',
                      f'    secret-key = "{secret_key}"', ""])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


# ---- who may speak for which login -----------------------------------------------------------------------------

def login_refusal(accounts: list[int], keys: dict[str, ClientKey] | None, user_id: str | None,
                  login: int) -> str | None:
    """Why a HELLO for ``login`` is refused (the message names that login only), or None when it is allowed.

    ``keys``: the client keys when CURVE is on; ``user_id``: the connection's ZAP User-Id (its public key).
    """
    if accounts and login not in accounts:
        return f"login {login} is not served by this bridge (bridge.accounts)"
    if keys is None:
        return None
    key = keys.get(user_id) if user_id else None
    if key is None:
        # Only a known key gets through the handshake; this is a connection whose key the bridge cannot see.
        return f"login {login}: this connection's client key is unknown to the bridge"
    if key.logins is not None and login not in key.logins:
        return f"login {login} may not be spoken for with client key {key.name}"
    return None
