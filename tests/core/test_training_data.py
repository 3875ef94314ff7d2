"""classifier_core.training_data: parsing, validation messages, set checks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from classifier_core import training_data
from classifier_core.config import Mode, TrainingConfig
from classifier_core.errors import TrainingDataError
from classifier_core.training_data import (
    TrainingSet,
    check_test_set,
    load_training_data,
    read_comprehend_csv,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "training"
MULTI_CLASS = TrainingConfig()
MULTI_LABEL = TrainingConfig(mode=Mode.MULTI_LABEL)


def read(name: str, config: TrainingConfig = MULTI_CLASS) -> tuple[TrainingSet, list[str]]:
    with open(DATA / name, "rb") as fp:
        data, issues = read_comprehend_csv(fp, name, config)
    return data, [str(issue) for issue in issues]


def read_text(text: str, config: TrainingConfig = MULTI_CLASS) -> tuple[TrainingSet, list[str]]:
    data, issues = read_comprehend_csv(io.BytesIO(text.encode()), "t.csv", config)
    return data, [str(issue) for issue in issues]


def load(texts: dict[str, str | bytes], config: TrainingConfig = MULTI_CLASS, **kwargs):
    sources = [(name, io.BytesIO(t.encode() if isinstance(t, str) else t)) for name, t in texts.items()]
    return load_training_data(sources, config, **kwargs)


def load_error(texts: dict[str, str | bytes], config: TrainingConfig = MULTI_CLASS, **kwargs) -> list[str]:
    with pytest.raises(TrainingDataError) as caught:
        load(texts, config, **kwargs)
    return [str(issue) for issue in caught.value.issues]


def csv_rows(counts: dict[str, int]) -> str:
    return "".join(f"{label},document {i} about {label}\n" for label, n in counts.items() for i in range(n))


# --- TrainingSet -----------------------------------------------------------------------


def test_training_set_basics_and_parquet_round_trip(tmp_path):
    data = TrainingSet(["a b", "c, \"d\"\n", "é"], [("x",), ("x", "y"), ("z",)])
    assert len(data) == 3
    assert data.label_set == ["x", "y", "z"]
    assert data.subset(np.array([2, 0])) == TrainingSet(["é", "a b"], [("z",), ("x",)])
    data.to_parquet(tmp_path / "train.parquet")
    assert TrainingSet.from_parquet(tmp_path / "train.parquet") == data


def test_parquet_stores_labels_as_list_of_strings(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    TrainingSet(["a"], [("x", "y")]).to_parquet(tmp_path / "t.parquet")
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert schema.field("labels").type == pa.list_(pa.string())


# --- Comprehend CSV: valid files ---------------------------------------------------------


def test_valid_multiclass_file():
    data, issues = read("multiclass_small.csv")
    assert issues == []
    assert len(data) == 6
    assert data.labels[0] == ("spam",)
    assert data.texts[1] == "Lunch at noon, as usual?"
    assert data.texts[4] == 'I want my money back, "now"'
    assert data.label_set == ["ham", "refund", "spam"]


def test_valid_multilabel_file_sorts_deduplicates_and_strips():
    data, issues = read("multilabel_small.csv", MULTI_LABEL)
    assert issues == []
    assert data.labels == [("news", "sports"), ("news",), ("sports",), ("finance", "news"), ("finance",)]
    assert data.texts[4] == " Bank profits rise"  # texts are kept as they are


def test_bom_is_stripped():
    data, issues = read("bom.csv")
    assert issues == []
    assert data.labels == [("spam",), ("ham",)]


def test_crlf_rows_and_quoted_crlf():
    data, issues = read("crlf.csv")
    assert data.texts[:3] == ["Win a cruise", "Lunch\r\nat noon", "Cheap pills"]
    assert issues == ["crlf.csv line 5: expected 2 columns (label,text); found 3"]


def test_quoted_newlines_shift_line_numbers_of_later_rows():
    data, issues = read("quoted_newlines.csv")
    assert data.texts == ["Dear friend,\nyou have won\na cruise", "Lunch at noon", 'Cheap "pills"\nonline']
    assert issues == [
        "quoted_newlines.csv line 6: expected 2 columns (label,text); found 3",
        "quoted_newlines.csv line 9: expected a label; found an empty label",
    ]


def test_blank_lines_are_skipped_silently():
    data, issues = read_text("\nspam,a\n\n\r\nham,b\n\n")
    assert issues == []
    assert data.labels == [("spam",), ("ham",)]


def test_text_longer_than_csv_default_field_limit():
    text = "word " * 40_000  # 200k characters; csv's default limit is 131072
    data, issues = read_text(f'spam,"{text}"\nham,short\n')
    assert issues == []
    assert data.texts[0] == text


def test_reader_does_not_close_the_file_object():
    fp = io.BytesIO(b"spam,a\n")
    read_comprehend_csv(fp, "t.csv", MULTI_CLASS)
    assert not fp.closed


# --- Comprehend CSV: row errors ----------------------------------------------------------


def test_wrong_column_counts():
    data, issues = read("three_columns.csv")
    assert issues == [
        "three_columns.csv line 2: expected 2 columns (label,text); found 3",
        "three_columns.csv line 3: expected 2 columns (label,text); found 1",
    ]
    assert data.texts == ["Win a cruise", "Cheap pills"]


def test_header_row():
    data, issues = read("header.csv")
    assert issues == ["header.csv line 1: expected a data row (Comprehend CSV has no header); found a header 'Label,Text'"]
    assert len(data) == 2


def test_header_words_after_the_first_row_are_data():
    data, issues = read_text("spam,a\nlabel,text\n")
    assert issues == []
    assert data.labels == [("spam",), ("label",)]


def test_first_row_with_only_one_header_word_is_data():
    data, issues = read_text("label,Win a cruise\nham,b\n")
    assert issues == []
    assert len(data) == 2


def test_empty_and_whitespace_labels():
    assert read("empty_label.csv")[1] == ["empty_label.csv line 2: expected a label; found an empty label"]
    assert read("whitespace_label.csv")[1] == ["whitespace_label.csv line 2: expected a label; found only whitespace"]


def test_empty_and_whitespace_texts():
    data, issues = read("empty_text.csv")
    assert issues == [
        "empty_text.csv line 2: expected a text; found an empty text",
        "empty_text.csv line 3: expected a text; found only whitespace",
    ]
    assert data.texts == ["Win a cruise", "Cheap pills"]


def test_a_row_with_empty_label_and_empty_text_reports_both():
    assert read_text(",\n")[1] == [
        "t.csv line 1: expected a label; found an empty label",
        "t.csv line 1: expected a text; found an empty text",
    ]


def test_unclosed_quote_reported_where_the_record_starts():
    data, issues = read("unclosed_quote.csv")
    assert issues == [
        "unclosed_quote.csv line 3: expected a closing quote for the field starting on this line; found end of file"
    ]
    assert data.texts == ["Win a cruise", "Lunch at noon"]


def test_unclosed_quote_without_final_newline():
    assert read_text('spam,a\nham,"b')[1] == [
        "t.csv line 2: expected a closing quote for the field starting on this line; found end of file"
    ]


def test_closed_quote_at_end_of_file_without_newline_is_fine():
    data, issues = read_text('spam,a\nham,"b ""c"""')
    assert issues == []
    assert data.texts == ["a", 'b "c"']


def test_invalid_utf8_reported_per_row_and_parsing_goes_on():
    data, issues = read("non_utf8.csv")
    assert issues == [
        "non_utf8.csv line 2: expected UTF-8 text; found invalid byte 0xe9",
        "non_utf8.csv line 3: expected UTF-8 text; found invalid byte 0xff",
    ]
    assert data.texts == ["Win a cruise", "Cheap pills"]


def test_invalid_byte_in_label():
    _, issues = read_comprehend_csv(io.BytesIO(b"sp\x80am,a\n"), "t.csv", MULTI_CLASS)
    assert [str(i) for i in issues] == ["t.csv line 1: expected UTF-8 text; found invalid byte 0x80"]


def test_delimiter_inside_multiclass_label():
    _, issues = read("delimiter_in_multiclass.csv")
    assert issues == [
        "delimiter_in_multiclass.csv line 2: expected one class per row in MULTI_CLASS mode; found 'ham|spam', "
        "which contains the label delimiter '|' (use MULTI_LABEL mode or another --label-delimiter)"
    ]


def test_empty_label_inside_multilabel_field():
    _, issues = read_text("a||b,x\na|,y\na|b,z\n", MULTI_LABEL)
    assert issues == [
        "t.csv line 1: expected labels separated by '|'; found an empty label in 'a||b'",
        "t.csv line 2: expected labels separated by '|'; found an empty label in 'a|'",
    ]


def test_other_delimiter():
    data, issues = read_text("b;a,x\nc,y\n", TrainingConfig(mode=Mode.MULTI_LABEL, label_delimiter=";"))
    assert issues == []
    assert data.labels == [("a", "b"), ("c",)]


def test_tab_delimiter_splits_tabs_away():
    data, issues = read_text('"a\tb",x\n', TrainingConfig(mode=Mode.MULTI_LABEL, label_delimiter="\t"))
    assert issues == []
    assert data.labels == [("a", "b")]


def test_control_character_in_class_name():
    assert read_text('"a\x01b",x\n')[1] == [
        "t.csv line 1: expected a class name without control characters; found 'a\\x01b'"
    ]
    assert read_text('"a\tb",x\n', MULTI_LABEL)[1] == [
        "t.csv line 1: expected a class name without control characters; found 'a\\tb'"
    ]


def test_class_name_length():
    assert read_text(f"{'c' * 5000},x\n")[1] == []
    assert read_text(f"{'c' * 5001},x\n")[1] == [
        "t.csv line 1: expected a class name of at most 5000 characters; found 5001"
    ]


# --- load_training_data: set-level checks -------------------------------------------------


def test_load_concatenates_sources_in_order_and_warns_about_small_classes():
    data, warnings = load({"a.csv": csv_rows({"spam": 3}), "b.csv": csv_rows({"ham": 60, "refund": 3})})
    assert len(data) == 66
    assert data.labels[0] == ("spam",) and data.labels[3] == ("ham",)
    assert [str(w) for w in warnings] == [
        "expected at least 50 training documents per class (Comprehend requires 10, recommends 50); found 3 for 'refund'",
        "expected at least 50 training documents per class (Comprehend requires 10, recommends 50); found 3 for 'spam'",
    ]


def test_load_without_warnings():
    _, warnings = load({"a.csv": csv_rows({"spam": 50, "ham": 50})})
    assert warnings == []


def test_strict_makes_fewer_than_ten_documents_an_error_but_keeps_warnings_above():
    rows = csv_rows({"spam": 9, "ham": 12, "eggs": 60})
    assert load_error({"a.csv": rows}, TrainingConfig(strict=True)) == [
        "expected at least 50 training documents per class (Comprehend requires 10, recommends 50); found 9 for 'spam'"
    ]
    _, warnings = load({"a.csv": csv_rows({"ham": 12, "eggs": 60})}, TrainingConfig(strict=True))
    assert [w.message for w in warnings] == [
        "expected at least 50 training documents per class (Comprehend requires 10, recommends 50); found 12 for 'ham'"
    ]


def test_row_errors_of_every_file_are_reported():
    assert load_error({"a.csv": "spam,x\nham\n", "b.csv": "ham,y\n,z\n"}) == [
        "a.csv line 2: expected 2 columns (label,text); found 1",
        "b.csv line 2: expected a label; found an empty label",
    ]


def test_one_class():
    with open(DATA / "one_class.csv", "rb") as fp:
        with pytest.raises(TrainingDataError) as caught:
            load_training_data([("one_class.csv", fp)], MULTI_CLASS)
    assert str(caught.value) == "expected at least 2 distinct classes; found 1 ('spam')"


def test_no_rows_and_multilabel_wording():
    assert load_error({"a.csv": ""}) == ["expected at least one training document; found none in a.csv"]
    assert load_error({"a.csv": "x,y\n"}, MULTI_LABEL)[0] == "expected at least 2 distinct labels; found 1 ('x')"


def test_too_many_classes_and_labels():
    rows = "".join(f"c{i},text\n" for i in range(1001))
    assert "expected at most 1000 classes; found 1001" in load_error({"a.csv": rows})
    rows = "".join(f"c{i},text\n" for i in range(101))
    assert "expected at most 100 labels; found 101" in load_error({"a.csv": rows}, MULTI_LABEL)


def test_too_many_documents_and_bytes(monkeypatch):
    monkeypatch.setattr(training_data, "MAX_TRAINING_DOCUMENTS", 99)
    monkeypatch.setattr(training_data, "MAX_TRAINING_BYTES", 1000)
    rows = csv_rows({"spam": 50, "ham": 50})
    assert load_error({"a.csv": rows}) == [
        "expected at most 99 training documents; found 100",
        f"expected at most 1000 bytes of training data; found {len(rows.encode())}",
    ]


def test_errors_are_capped(monkeypatch):
    with pytest.raises(TrainingDataError) as caught:
        load({"a.csv": "a\n" * 60})
    assert len(caught.value.issues) == 50
    assert caught.value.truncated
    assert str(caught.value).endswith("(more problems not shown)")


def test_label_delimiter_must_be_allowed():
    issues = load_error({"a.csv": "a,b\n"}, TrainingConfig(mode=Mode.MULTI_LABEL, label_delimiter=","))
    assert issues == [
        "expected --label-delimiter to be one of '\\t', ' ', '!', '#', '$', '%', '*', '+', '-', '/', ':', ';', "
        "'=', '>', '?', '@', '\\', '^', '_', '|', '~'; found ','"
    ]


def test_multilabel_needs_fifty_documents():
    rows = csv_rows({"a|b": 12, "b": 12, "a": 12})
    message = "expected at least 50 documents in MULTI_LABEL mode; found 36"
    _, warnings = load({"a.csv": rows}, MULTI_LABEL)
    assert message in [w.message for w in warnings]
    assert message in load_error({"a.csv": rows}, TrainingConfig(mode=Mode.MULTI_LABEL, strict=True))


def test_multilabel_counts_documents_per_label():
    _, warnings = load({"a.csv": csv_rows({"a|b": 5, "b": 50})}, MULTI_LABEL)
    assert [w.message for w in warnings] == [
        "expected at least 50 training documents per label (Comprehend requires 10, recommends 50); found 5 for 'a'"
    ]


def test_wrong_delimiter_heuristic():
    with open(DATA / "wrong_delimiter.csv", "rb") as fp:
        _, warnings = load_training_data([("wrong_delimiter.csv", fp)], MULTI_LABEL)
    assert str(warnings[-1]) == (
        "expected labels joined by '|'; found no row with more than one label, while labels such as "
        "'finance;news' contain ';' (is --label-delimiter ';'?)"
    )


def test_wrong_delimiter_heuristic_is_quiet_when_a_row_has_several_labels():
    _, warnings = load({"a.csv": csv_rows({"a-b": 50, "c|d": 50})}, MULTI_LABEL)
    assert warnings == []


def test_wrong_delimiter_heuristic_ignores_spaces_and_multiclass():
    _, warnings = load({"a.csv": csv_rows({"credit card": 50, "loan": 50})}, MULTI_LABEL)
    assert warnings == []
    _, warnings = load({"a.csv": csv_rows({"a;b": 50, "c": 50})})
    assert warnings == []


# --- check_test_set -----------------------------------------------------------------------


def test_check_test_set():
    train = TrainingSet(["a", "b", "c"], [("spam",), ("ham",), ("refund",)])
    test = TrainingSet(["d", "e"], [("spam",), ("eggs",)])
    expected = [
        "test.csv: expected every training class in the test set; found no test document for 'ham'",
        "test.csv: expected every training class in the test set; found no test document for 'refund'",
        "test.csv: expected only class names seen in training; found 'eggs', which no training document has",
    ]
    assert [str(i) for i in check_test_set(train, test, "test.csv", MULTI_CLASS)] == expected
    with pytest.raises(TrainingDataError) as caught:
        check_test_set(train, test, "test.csv", TrainingConfig(strict=True))
    assert [str(i) for i in caught.value.issues] == expected
    assert check_test_set(train, train, "test.csv", TrainingConfig(strict=True)) == []


def test_a_test_set_is_checked_row_by_row_but_not_against_training_minimums():
    rows = b"ham,hello there\nspam,win a prize now\nham,see you\n"
    data, warnings = load_training_data([("test.csv", io.BytesIO(rows))], TrainingConfig(), test_set=True)
    assert len(data) == 3 and warnings == []
    broken = b"ham,hello\nspam,a,b\n"
    with pytest.raises(TrainingDataError) as info:
        load_training_data([("test.csv", io.BytesIO(broken))], TrainingConfig(), test_set=True)
    assert [str(i) for i in info.value.issues] == ["test.csv line 2: expected 2 columns (label,text); found 3"]
