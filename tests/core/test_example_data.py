"""The embedded default dataset is the real Indian Pines scene, byte for byte as recorded."""

import hashlib
import re

from stages.ingest import EXAMPLES, EXAMPLES_DIR


def test_embedded_files_match_their_provenance_hashes():
    text = (EXAMPLES_DIR / "indian_pines" / "PROVENANCE.md").read_text()
    recorded = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})\s+(\S+)", text))
    assert len(recorded) == 3
    for name, digest in recorded.items():
        assert hashlib.sha256((EXAMPLES_DIR / "indian_pines" / name).read_bytes()).hexdigest() == digest
    assert EXAMPLES["indian-pines"]["source"].name in recorded
