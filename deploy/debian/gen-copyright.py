#!/usr/bin/env python3
"""Writes the Debian package's copyright file (DEP-5) for /usr/bin/solidarity.

Usage: gen-copyright.py OUT [--changelog-date RFC2822]

Our workspace crates are AGPL-3.0-or-later; every other crate compiled into the binary
(the normal dependencies of the `solidarity` package, transitively, for the host target,
as `cargo metadata --locked` resolves them; build and dev dependencies are left out) gets
a Files paragraph with its authors and licence expression. Each licence named gets one
stand-alone License paragraph: a reference to /usr/share/common-licenses where Debian
ships the text, else the text found in the sources of a crate under that licence (the
Cargo registry copy), else a pointer to those sources. Python 3 standard library only.
"""

import json
import os
import re
import subprocess
import sys

ROOT_PACKAGE = "solidarity"
COMMON_LICENSES = {
    "Apache-2.0": "Apache-2.0",
    "MPL-2.0": "MPL-2.0",
    "CC0-1.0": "CC0-1.0",
}
# What a licence text must contain (all of) and must not contain (any of), to be taken as
# that licence's text.
TEXT_MARKERS = {
    "MIT": (["permission is hereby granted, free of charge", "shall be included"], []),
    "MIT-0": (["permission is hereby granted, free of charge"], ["shall be included"]),
    "BSD-3-Clause": (["redistribution and use in source and binary forms", "neither the name"], []),
    "BSD-2-Clause": (["redistribution and use in source and binary forms"], ["neither the name"]),
    "ISC": (["permission to use, copy, modify", "above copyright notice"], []),
    "0BSD": (["permission to use, copy, modify", "with or without fee"], ["above copyright notice"]),
    "Zlib": (["provided 'as-is'", "altered source versions"], []),
    "Unicode-3.0": (["unicode", "permission is hereby granted"], []),
    "Unlicense": (["free and unencumbered software"], []),
    "BSL-1.0": (["boost software license"], []),
    "bzip2-1.0.6": (["redistribution and use in source and binary forms", "seward"], []),
    "CDLA-Permissive-2.0": (["community data license agreement"], []),
    "LLVM-exception": (["llvm exceptions to the apache 2.0 license"], []),
    "AGPL-3.0-or-later": (["gnu affero general public license"], []),
}
LICENSE_FILE = re.compile(r"^(licen[sc]e|copying|unlicense|notice)", re.IGNORECASE)


def host_triple():
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("host: "):
            return line.split(": ", 1)[1]
    raise SystemExit("gen-copyright: no host triple in `rustc -vV`")


def metadata():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked",
         "--filter-platform", host_triple()],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def compiled_in(meta):
    """The packages linked into the binary: normal dependencies, transitively."""
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"]
                if p["name"] == ROOT_PACKAGE and p["source"] is None)
    seen, todo = set(), [root]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for dep in nodes[current]["deps"]:
            if any(kind["kind"] is None for kind in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    return [packages[i] for i in seen]


def normalise(expression):
    """An SPDX expression (or an old `A/B` one) in DEP-5 words."""
    expression = re.sub(r"\s*/\s*", " OR ", expression.strip())
    expression = re.sub(r"\s+WITH\s+(\S+)", r" with \1 exception", expression)
    expression = expression.replace(" OR ", " or ").replace(" AND ", " and ")
    return expression


def short_names(expression):
    words = re.split(r"[\s()]+", expression)
    names, skip = [], False
    for index, word in enumerate(words):
        if not word or word in ("or", "and", "exception"):
            continue
        if word == "with":
            skip = True
            continue
        if skip:  # the exception's name
            names.append(word)
            skip = False
            continue
        names.append(word)
    return names


def dep5_text(text):
    lines = []
    for line in text.replace("\r\n", "\n").replace("\t", "    ").strip("\n").split("\n"):
        line = line.rstrip()
        lines.append(" " + line if line else " .")
    return "\n".join(lines)


def find_text(name, candidates):
    """The text of licence `name` from the sources of `candidates` (package dirs)."""
    markers = TEXT_MARKERS.get(name)
    if not markers:
        return None
    needed, refused = markers
    # Another licence's full text in the same file (a crate's combined LICENSE) is not it.
    refused = refused + ["terms and conditions for use, reproduction, and distribution"]
    found = []
    for directory in candidates:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(directory, entry)
            if not LICENSE_FILE.match(entry) or not os.path.isfile(path):
                continue
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read(200_000)
            except (OSError, UnicodeDecodeError):
                continue
            low = " ".join(text.lower().split())
            if all(n in low for n in needed) and not any(r in low for r in refused):
                found.append(text)
    # The shortest match: the plainest copy of the text.
    return min(found, key=len) if found else None


def llvm_exception(candidates):
    """The LLVM exception alone (Apache-2.0's text is in /usr/share/common-licenses)."""
    for directory in candidates:
        for entry in sorted(os.listdir(directory)):
            path = os.path.join(directory, entry)
            if not LICENSE_FILE.match(entry) or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read(200_000)
            start = text.lower().find("llvm exceptions to the apache 2.0 license")
            if start >= 0:
                return text[text.rfind("\n", 0, start) + 1:]
    return None


def one_line(text):
    return " ".join(text.split())


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: gen-copyright.py OUT")
    out_path = sys.argv[1]
    meta = metadata()
    workspace_root = meta["workspace_root"]
    packages = sorted(compiled_in(meta), key=lambda p: (p["name"], p["version"]))
    ours = [p for p in packages if p["source"] is None]
    theirs = [p for p in packages if p["source"] is not None]

    paragraphs = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: solidarity\n"
        "Upstream-Contact: solidarity maintainers\n"
        "Comment: /usr/bin/solidarity is one statically linked Rust program. Its own\n"
        " crates (" + ", ".join(p["name"] for p in ours) + ") are\n"
        " AGPL-3.0-or-later. Every other crate compiled into it is listed below\n"
        " with its version, authors and licence expression (from its Cargo.toml, as\n"
        f" crates.io publishes it): {len(theirs)} crates. Their Files patterns name the\n"
        " crate's source as `cargo-registry/NAME-VERSION/`.\n"
        " Generated by deploy/debian/gen-copyright.py from `cargo metadata`.",
        "Files: *\n"
        "Copyright: the solidarity authors\n"
        "License: AGPL-3.0-or-later",
    ]
    used = {"AGPL-3.0-or-later": [workspace_root]}
    for package in theirs:
        expression = normalise(package["license"] or "UNKNOWN")
        directory = os.path.dirname(package["manifest_path"])
        for name in short_names(expression):
            used.setdefault(name, []).append(directory)
        authors = [one_line(a) for a in package.get("authors") or []]
        if not authors:
            authors = [f"the {package['name']} authors"]
        copyright_lines = "\n ".join(authors)
        paragraphs.append(
            f"Files: cargo-registry/{package['name']}-{package['version']}/*\n"
            f"Copyright: {copyright_lines}\n"
            f"License: {expression}"
        )

    for name in sorted(used):
        if name in COMMON_LICENSES:
            paragraphs.append(
                f"License: {name}\n"
                f" On Debian systems, the complete text of this licence is in\n"
                f" /usr/share/common-licenses/{COMMON_LICENSES[name]}.")
            continue
        text = find_text(name, used[name])
        if name == "LLVM-exception":
            text = llvm_exception(used[name])
        if text is None and name == "AGPL-3.0-or-later":
            paragraphs.append(
                "License: AGPL-3.0-or-later\n"
                " This program is free software: you can redistribute it and/or modify it\n"
                " under the terms of the GNU Affero General Public License as published by\n"
                " the Free Software Foundation, either version 3 of the License, or (at\n"
                " your option) any later version.\n"
                " .\n"
                " This program is distributed in the hope that it will be useful, but\n"
                " WITHOUT ANY WARRANTY; without even the implied warranty of\n"
                " MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See the GNU Affero\n"
                " General Public License for more details.\n"
                " .\n"
                " The complete text of the licence is at\n"
                " https://www.gnu.org/licenses/agpl-3.0.txt.")
            continue
        if text is None:
            crates = sorted({os.path.basename(d) for d in used[name]})
            paragraphs.append(
                f"License: {name}\n"
                f" The complete text of this licence is in the sources of the crates\n"
                f" under it: {', '.join(crates)}.")
            continue
        paragraphs.append(f"License: {name}\n{dep5_text(text)}")

    with open(out_path, "w", encoding="utf-8") as handle:
        handle.write("\n\n".join(paragraphs) + "\n")
    print(f"gen-copyright: {len(theirs)} crates, {len(used)} licences -> {out_path}")


if __name__ == "__main__":
    main()
