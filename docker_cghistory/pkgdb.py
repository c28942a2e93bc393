"""Package databases as apk and dpkg write them, for images that carry no SBOM.

- apk ``lib/apk/db/installed``: one stanza per package, stanzas separated by a blank line,
  each line ``X:value`` with a one-letter field (``P`` name, ``V`` version, ``o`` origin,
  ``F``/``R`` files ...).
- dpkg ``var/lib/dpkg/status``: RFC 822 stanzas; a line starting with a space or tab continues
  the field above; only ``Status: ... installed`` packages are on the system (``deinstall ok
  config-files`` packages left only their configuration behind).
- distroless ``var/lib/dpkg/status.d/NAME``: one stanza per file, without ``Status`` (every
  file is an installed package), next to ``NAME.md5sums`` files that are not stanzas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from .errors import CghistoryError, sanitize
from .packages import Package, merge

_APK_LINE = re.compile(r"^[A-Za-z]:")
_DEB_FIELD = re.compile(r"^([!-9;-~][!-9;-~]*):[ \t]*(.*)\Z")  # RFC 822 field name, then ':'


class PackageDBError(CghistoryError):
    """A package database that is not in the format its path promises."""


def _text(data: bytes) -> str:
    # File names in F: lines may be any bytes; names and versions are ASCII. Replacing keeps one
    # odd file name from failing the whole database.
    return data.decode("utf-8", errors="replace")


def parse_apk_installed(data: bytes, where: str = "lib/apk/db/installed") -> tuple[Package, ...]:
    packages = []
    name = version = None
    for number, line in enumerate(_text(data).split("\n"), 1):
        line = line.rstrip("\r")
        if not line:
            if name:
                packages.append(Package("apk", name, version or ""))
            name = version = None
            continue
        if not _APK_LINE.match(line):
            raise PackageDBError(f"{where} line {number} is not FIELD:VALUE: "
                                 f"{sanitize(line, 60)!r}")
        if line[0] == "P":
            name = line[2:].strip()
        elif line[0] == "V":
            version = line[2:].strip()
    if name:
        packages.append(Package("apk", name, version or ""))
    return merge(packages)


def _stanzas(data: bytes, where: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    last: str | None = None
    for number, raw in enumerate(_text(data).split("\n"), 1):
        line = raw.rstrip("\r")
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
            continue
        if line[0] in " \t":
            if last is None:
                raise PackageDBError(f"{where} line {number} continues no field")
            fields[last] += "\n" + line.strip()
            continue
        if line.startswith("#"):
            continue
        match = _DEB_FIELD.match(line)
        if not match:
            raise PackageDBError(f"{where} line {number} is not 'Field: value': "
                                 f"{sanitize(line, 60)!r}")
        last = match.group(1).lower()
        fields[last] = match.group(2).strip()
    if fields:
        yield fields


def _installed(fields: Mapping[str, str], require_status: bool) -> bool:
    status = fields.get("status")
    if status is None:
        return not require_status
    words = status.split()
    return len(words) == 3 and words[2] in ("installed", "triggers-awaited", "triggers-pending")


def parse_dpkg_status(
    data: bytes, where: str = "var/lib/dpkg/status", require_status: bool = True
) -> tuple[Package, ...]:
    packages = []
    for fields in _stanzas(data, where):
        name = fields.get("package", "").strip()
        if name and _installed(fields, require_status):
            packages.append(Package("deb", name, fields.get("version", "").strip()))
    return merge(packages)


def parse_dpkg_status_d(files: Mapping[str, bytes]) -> tuple[Package, ...]:
    """``files``: status.d entry name → content; ``*.md5sums`` entries are skipped."""
    packages: list[Package] = []
    for name in sorted(files):
        if name.endswith(".md5sums"):
            continue
        packages.extend(parse_dpkg_status(files[name], f"var/lib/dpkg/status.d/{name}",
                                          require_status=False))
    return merge(packages)
