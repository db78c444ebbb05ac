"""Download the UD treebanks from their official GitHub repositories, checking sha256.

    python -m probing.data.prepare DIR [--ref r2.16]
    export PROBING_DATA_DIR=DIR

Files whose hash we know (``KNOWN_SHA256``) must match it. For any other ref the first
download records its hash in ``DIR/SHA256SUMS`` and later runs verify against that record,
so a file that changes upstream or in transit never passes silently.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import urllib.request
from pathlib import Path

TREEBANKS = {
    "ud-english-ewt": ("UD_English-EWT", "en_ewt-ud-{split}.conllu"),
    "ud-english-gum": ("UD_English-GUM", "en_gum-ud-{split}.conllu"),
}
URL = "https://raw.githubusercontent.com/UniversalDependencies/{repo}/{ref}/{name}"
# the released EWT dev/test at commit 15d613d8, byte-identical to ../shared/data's copies
KNOWN_SHA256 = {
    ("15d613d8", "en_ewt-ud-dev.conllu"): "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
    ("15d613d8", "en_ewt-ud-test.conllu"): "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recorded(sums: Path) -> dict[str, str]:
    if not sums.is_file():
        return {}
    return dict(reversed(line.split(maxsplit=1)) for line in sums.read_text().splitlines() if line.strip())


def prepare(dest: Path, ref: str, splits=("train", "dev", "test")) -> list[Path]:
    sums = dest / "SHA256SUMS"
    recorded = _recorded(sums)
    written = []
    for folder, (repo, pattern) in TREEBANKS.items():
        for split in splits:
            name = pattern.format(split=split)
            target = dest / folder / name
            rel = f"{folder}/{name}"
            url = URL.format(repo=repo, ref=ref, name=name)
            if target.is_file():
                data = target.read_bytes()
            else:
                print(f"downloading {url}", file=sys.stderr)
                with urllib.request.urlopen(url, timeout=60) as response:
                    data = response.read()
            digest = _sha256(data)
            expected = KNOWN_SHA256.get((ref, name)) or recorded.get(rel)
            if expected and digest != expected:
                raise SystemExit(f"{url}: sha256 {digest} differs from the expected {expected}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            recorded[rel] = digest
            written.append(target)
    sums.write_text("".join(f"{h}  {p}\n" for p, h in sorted(recorded.items())))
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--ref", default="r2.16", help="git tag or commit of the UD repositories")
    args = parser.parse_args(argv)
    for path in prepare(args.dest, args.ref):
        print(path)
    print(f"export PROBING_DATA_DIR={args.dest.resolve()}")


if __name__ == "__main__":
    main()
