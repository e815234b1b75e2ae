"""The state file: where cnet records every object it owns.

Format. The file is YAML. cnet writes it in YAML's JSON-compatible flow style
(a JSON document is a valid YAML document), because reading that back takes
the `json` module ~0.1 s for 10,000 endpoints where PyYAML, even with its C
loader, takes ~2 s. A file edited by hand in block style is still read, with
PyYAML's C loader where available, and is written back in flow style.

Memory. A StateStore keeps the state it last saved, and the encoded line of
each sandbox, endpoint and port mapping. Its next load returns a copy of that
state when the file is still the one it wrote (same inode, size, mtime and
serial), and its next save re-encodes only objects it has not written
before: those objects are frozen values, which operations replace and
never change (see model). So one process doing many operations (the API,
`cnet batch`) pays for the whole file once, not per operation. Callers must
not change the networks they got from the state in place either.

Safety. Every read-modify-write holds an exclusive flock on a sibling lock
file (`state.yaml.lock`), so concurrent cnet processes serialize. Writes go
to a temp file in the same directory, are fsynced and renamed over the old
file, so a reader sees the old or the new state, never half of one; readers
therefore need no lock. A file that cannot be parsed, or carries a version
this cnet does not know, is an error and is never overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator

from .errors import StateFileError
from .model import State, record_dicts

DEFAULT_STATE_PATH = "/var/lib/cnet/state.yaml"
VERSION = 1


def state_path(explicit: str | None = None) -> str:
    """--state, else CNET_STATE, else the default."""
    return explicit or os.environ.get("CNET_STATE") or DEFAULT_STATE_PATH


def _parse(text: str, path: str) -> dict:
    try:
        return json.loads(text)
    except ValueError:
        pass  # not the flow style cnet writes: perhaps hand-edited block YAML
    import yaml  # only here: the common path never pays for importing it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise StateFileError(f"state file {path} cannot be parsed{where}: {problem}") from e


def decode(text: str, path: str) -> State:
    """Turn the file's text into a State, or raise StateFileError naming the file."""
    if not text.strip():  # a truncated file, never one cnet wrote: read as empty, the next change would drop all
        raise StateFileError(f"state file {path} is empty; cnet writes even an empty state as a document"
                             " (delete the file if nothing is recorded)")
    doc = _parse(text, path)
    if not isinstance(doc, dict):
        raise StateFileError(f"state file {path} is not a mapping")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:  # not `true`, which equals 1
        raise StateFileError(
            f"state file {path} has version {version!r}; this cnet reads version {VERSION}"
            " (was it written by another cnet release?)")
    from . import statecheck

    try:
        statecheck.check(doc)
    except statecheck.BadRecord as e:
        raise StateFileError(f"state file {path}: {e}") from None
    try:
        return State.from_dict(doc)
    except (TypeError, KeyError, ValueError, AttributeError) as e:  # a record statecheck let through
        raise StateFileError(f"state file {path} is malformed: {e}") from e


# json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")), with one encoder
# for every call (json.dumps with these arguments makes a new one each time).
# Non-ASCII is written as is (YAML reads it so).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def _members(objects: list) -> list[str]:
    """_dumps(obj.to_dict()) of each of these flat objects, without its
    braces, from one call to the encoder for them all: JSONEncoder.encode
    makes its C encoder anew at each call, ~1.3 us an object, 25 ms for the
    21,000 of a state of 10,000 endpoints. The list is written "[{a}, {b},
    {c}]", so "}, {" stands between two objects; anywhere else (in a string)
    it would cut the text into more parts than objects, which are then
    encoded one call each."""
    if not objects:
        return []
    dicts = record_dicts(objects)
    members = _dumps(dicts)[2:-2].split("}, {")
    if len(members) != len(objects):  # some string holds "}, {": one call each, then
        return [_dumps(d)[1:-1] for d in dicts]
    return members


_MISSING = (None,)  # what earlier.get gives for an object not in the memo

# Characters JSON leaves bare but YAML forbids in a file or reads as line breaks
# (NEL, LS, PS): written as \uXXXX escapes, which both read back the same.
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def encode(state: State, serial: str | None = None, memo: dict | None = None) -> str:
    """One object a line: readable and diffable, and ~4x quicker to write than
    json.dumps(indent=...). Non-ASCII is written as is (YAML reads it so).
    memo: {id(obj): (obj, json without braces)} of an earlier encode, whose
    json is reused for the same objects; it is updated to hold this state's
    objects only."""
    earlier = memo.copy() if memo is not None else {}
    if memo is not None:
        memo.clear()
    # Sandboxes, endpoints and ports are flat: their attributes are what the file holds.
    # Their lines are kept by id, which costs no hashing of the object: the memo holds
    # the object, so its id is not reused, and a frozen object's line stays what it was.
    flats = [*state.sandboxes.values(), *state.endpoints, *state.ports]
    new = [o for o in flats if earlier.get(id(o), _MISSING)[0] is not o] if earlier else flats
    earlier.update(zip(map(id, new), zip(new, _members(new))))

    def flat(obj) -> str:
        entry = earlier[id(obj)]
        if memo is not None:
            memo[id(obj)] = entry
        return entry[1]

    parts = [f'{{\n "version": {VERSION}']
    if serial is not None:
        parts.append(f' "serial": "{serial}"')
    lines = ",\n".join(f"  {_dumps(k)}: {_dumps(v.to_dict())}" for k, v in state.networks.items())
    parts.append(f' "networks": {{\n{lines}\n }}' if lines else ' "networks": {}')
    lines = ",\n".join(f"  {_dumps(k)}: {{{flat(v)}}}" for k, v in state.sandboxes.items())
    parts.append(f' "sandboxes": {{\n{lines}\n }}' if lines else ' "sandboxes": {}')
    for key, items in (("endpoints", state.endpoints), ("ports", state.ports)):
        lines = ",\n".join(f"  {{{flat(v)}}}" for v in items)
        parts.append(f' "{key}": [\n{lines}\n ]' if lines else f' "{key}": []')
    parts.append(f' "host": {_dumps(state.host)}')
    text = ",\n".join(parts) + "\n}\n"
    if text.isascii() and "\x7f" not in text:  # DEL is ASCII, and not printable for YAML
        return text
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class StateStore:
    """The state file at one path, with its lock."""

    def __init__(self, path: str):
        self.path = path
        self.lock_path = path + ".lock"
        self._kept: tuple[tuple, str, State] | None = None  # (file stamp, serial, state) of our last save
        self._lines: dict = {}  # the memo of encode() for our last save

    def _still_ours(self, stamp: tuple, serial: str) -> bool:
        """The file is the one our last save wrote: same inode, size and
        mtime, and its serial (which tells apart an inode reused at once)."""
        try:
            with open(self.path, "rb") as f:
                if _stamp(os.fstat(f.fileno())) != stamp:
                    return False
                return f'"serial": "{serial}"'.encode() in f.read(64)
        except OSError:
            return False

    def load(self) -> State:
        """Read without locking (writers rename atomically). A missing file is an empty state."""
        if self._kept is not None:
            stamp, serial, state = self._kept
            if self._still_ours(stamp, serial):
                return state.copy()
            self._kept, self._lines = None, {}
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return State()
        except OSError as e:
            raise StateFileError(f"state file {self.path} cannot be read: {e.strerror}") from e
        except UnicodeDecodeError as e:
            raise StateFileError(f"state file {self.path} cannot be read: not UTF-8 text (byte {e.start})") from e
        return decode(text, self.path)

    def save(self, state: State) -> None:
        """Write atomically: temp file in the same directory, fsync, rename, fsync the directory."""
        directory = os.path.dirname(os.path.abspath(self.path))
        # a name of our own rather than tempfile.mkstemp: importing tempfile (and random) costs ~2 ms a start;
        # it names the state file, so that `cnet gc` knows whose it is (stale_temp_files)
        tmp = os.path.join(directory, f".{os.path.basename(self.path)}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            serial = os.urandom(8).hex()
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(encode(state, serial, self._lines))
                f.flush()
                os.fsync(f.fileno())
                stamp = _stamp(os.fstat(f.fileno()))
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            self._kept, self._lines = None, {}
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._kept = (stamp, serial, state.copy())
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock, waiting for other cnet processes to release
        it for at most CNET_LOCK_TIMEOUT seconds (default 30). The holder
        writes its pid in the lock file, so that one who gives up can say who
        held it."""
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StateFileError(f"cannot open lock file {self.lock_path}: {e.strerror}") from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._wait_for_lock(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def _wait_for_lock(self, fd: int) -> None:
        import time

        timeout = lock_timeout()
        deadline, pause = time.monotonic() + timeout, 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateFileError(f"state file {self.path} is locked by {self._holder(fd)} for"
                                         f" {timeout:g} s; giving up (CNET_LOCK_TIMEOUT sets how long to wait)")
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            pid = int(os.pread(fd, 32, 0).split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read(4096).replace(b"\0", b" ").decode(errors="replace").strip()
        except (ValueError, IndexError, OSError):
            return "another process (its pid is not known, or it is gone)"
        # an error is one line: a newline in an argument (python -c SCRIPT) is shown as \n
        command = "".join(c if c.isprintable() else repr(c)[1:-1] for c in command)
        if len(command) > 200:
            command = command[:200] + "..."
        return f"process {pid} ({command or 'its command line is not known'})"


def lock_timeout() -> float:
    """CNET_LOCK_TIMEOUT (seconds), else 30."""
    text = os.environ.get("CNET_LOCK_TIMEOUT", "")
    try:
        return max(0.0, float(text)) if text else 30.0
    except ValueError:
        raise StateFileError(f"CNET_LOCK_TIMEOUT={text!r} is not a number of seconds") from None


def stale_temp_files(path: str, locked: bool = True) -> list[str]:
    """The temporary files of saves of this state file that never ended (a
    process killed while writing). When the caller holds the lock no save is
    in progress, and all of them are stale; else (locked=False) only those
    whose writer is gone. The pattern of older releases (.state.PID.HEX)
    counts for a file named state.yaml."""
    directory, base = os.path.split(os.path.abspath(path))
    mine = re.compile(re.escape(f".{base}.") + r"\d+\.[0-9a-f]{12}\.tmp")
    older = re.compile(r"\.state\.\d+\.[0-9a-f]{12}") if base == "state.yaml" else None
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [n for n in names if mine.fullmatch(n) or (older and older.fullmatch(n))]
    if not locked:
        found = [n for n in found if not os.path.exists(f"/proc/{n.split('.')[-3 if n.endswith('.tmp') else -2]}")]
    return sorted(os.path.join(directory, n) for n in found)


def _stamp(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
