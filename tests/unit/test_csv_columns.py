"""Batch scoring's column reader (`batch_io.csv_columns`) reads a block of CSV lines as the
csv module does, or declines it (None) when a line does not have the header's width."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdaserve.batch.io import csv_columns

HEADER = ["id", "amount", "plan"]
field = st.one_of(
    st.sampled_from(["", "1", "-2.5", "pro", "a b", "x,y", 'say "hi"', "1e-05"]),
    st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(field, min_size=2, max_size=4), min_size=1, max_size=8))
def test_csv_columns_reads_what_the_csv_module_reads(rows: list[list[str]]) -> None:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    block = out.getvalue()[:-1]
    texts = block.split("\n")
    got = csv_columns(block, texts, HEADER)
    read = list(csv.reader(texts))
    if len(read) != len(texts) or any(len(r) != len(HEADER) for r in read):
        assert got is None
        return
    assert got is not None
    assert {n: list(c) for n, c in got.items()} == {
        n: [r[j] for r in read] for j, n in enumerate(HEADER)
    }
