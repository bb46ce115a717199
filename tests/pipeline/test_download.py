"""The downloader, against a local HTTP server standing in for the GitHub origins."""

from __future__ import annotations

import csv
import functools
import io
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from training.data.adapters import read_vihos, read_vihsd
from training.data.download import DownloadError, Origin, download


def _csv_bytes(header, rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


@pytest.fixture
def origin_server(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    with zipfile.ZipFile(site / "vihsd.zip", "w") as z:  # nested folders, as archives often are
        z.writestr(
            "vihsd/data/train.csv",
            _csv_bytes(["free_text", "label_id"], [["bài hay", 0], ["câu trong test", 1], ["đm", 1]]),
        )
        z.writestr("vihsd/data/dev.csv", _csv_bytes(["free_text", "label_id"], [["dev một", 0]]))
        z.writestr("vihsd/data/test.csv", _csv_bytes(["free_text", "label_id"], [["Câu trong test", 1]]))
    for split, rows in {
        "train": [["nói gì tào lao", "[7, 8]"], ["câu trong  test", "[]"]],
        "dev": [["dễ thương", "[]"]],
        "test": [["một câu test khác", "[]"]],
    }.items():
        (site / f"vihos_{split}.csv").write_bytes(_csv_bytes(["content", "index_spans"], rows))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    origins = {
        "vihsd": Origin("vihsd", {"archive": f"{base}/vihsd.zip"}, "free_text", kind="zip"),
        "vihos": Origin("vihos", {s: f"{base}/vihos_{s}.csv" for s in ("train", "dev", "test")}, "content"),
    }
    yield origins, base
    server.shutdown()


def test_download_writes_the_adapter_layout_without_test_texts(origin_server, tmp_path):
    origins, _ = origin_server
    out = tmp_path / "datasets"
    written = download(out, ["vihsd", "vihos"], origins)
    assert written == {"vihsd/train": 2, "vihsd/dev": 1, "vihos/train": 1, "vihos/dev": 1}
    assert not list(out.rglob("test.csv"))  # test splits are never kept
    texts = [r.text for r in read_vihsd(out)]
    assert "câu trong test" not in texts and "bài hay" in texts  # a test text (any casing/spacing) is removed
    assert [r.spans for r in read_vihos(out) if r.split == "train"] == [[(7, 9)]]


def test_unreachable_origin_and_sources_without_an_origin_say_what_to_do(origin_server, tmp_path):
    origins, base = origin_server
    broken = {"vihsd": Origin("vihsd", {"archive": f"{base}/missing.zip"}, "free_text", kind="zip")}
    with pytest.raises(DownloadError, match="cannot fetch"):
        download(tmp_path / "a", ["vihsd"], broken)
    with pytest.raises(DownloadError, match="Hugging Face"):
        download(tmp_path / "b", ["victsd"], origins)
