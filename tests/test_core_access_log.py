"""Personal data stays out of the access log: the request line the development server
(``dovetail run``) logs has phones, e-mail addresses and searches in its query masked."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request

import pytest
from werkzeug.serving import make_server

from core.accesslog import AccessLogFilter, mask_urls


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def werkzeug_log():
    logger = logging.getLogger("werkzeug")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_real_server_logs_masked_query_strings(app, werkzeug_log):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        query = ("q=13812349876&email=zhang.san%40example.cn&page=2&phone=%2B86%20138-1234-9876"
                 "&name=%E5%BC%A0%E4%B8%89&region=North")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/login?{query}") as r:
            assert r.status == 200
        deadline = time.monotonic() + 5
        while not any("/login?" in line for line in werkzeug_log.lines):
            assert time.monotonic() < deadline, werkzeug_log.lines
            time.sleep(0.02)
    finally:
        server.shutdown()
        thread.join(5)
    line = next(line for line in werkzeug_log.lines if "/login?" in line)
    assert "13812349876" not in line and "1234-9876" not in line
    assert "zhang.san" not in line and "张三" not in line and "%E5%BC%A0" not in line
    assert "q=138****9876" in line and "email=z***@example.cn" in line
    assert "page=2" in line and "region=North" in line and '" 200 ' in line


def werkzeug_record(request_line: str) -> logging.LogRecord:
    """A record as werkzeug's request handler makes it (``log_request``)."""
    return logging.LogRecord("werkzeug", logging.INFO, __file__, 1,
                             '127.0.0.1 - - [02/Dec/2026 09:00:00] "%s" %s %s',
                             (request_line, "200", "-"), None)


@pytest.mark.parametrize(("url", "hidden", "shown"), [
    ("/crm/customers?q=13812349876", ["13812349876"], ["q=138****9876"]),
    ("/crm/customers?q=%E5%BC%A0%E4%B8%89&tier=gold", ["%E5%BC%A0%E4%B8%89"], ["tier=gold"]),
    ("/crm/customers?q=张三丰", ["张三丰"], ["q=张****"]),
    ("/api/v1/customers?mobile=+86+139+0000+1111&per_page=50", ["0000"],
     ["mobile=139****1111", "per_page=50"]),
    ("/api/v1/customers?contact=li.si@example.com", ["li.si"], ["l***@example.com"]),
    ("/x?since=2024-01-01&id=12345&sku=SKU-13812349", [], ["since=2024-01-01", "id=12345",
                                                           "sku=SKU-13812349"]),
    ("/x?tel=010-8888-6666", ["8888-6666", "88886666"], ["tel=010****6666"]),
])
def test_the_filter_masks_personal_query_values(url, hidden, shown):
    record = werkzeug_record(f"GET {url} HTTP/1.1")
    assert AccessLogFilter().filter(record) is True
    line = record.getMessage()
    assert url.split("?")[0] in line and '" 200 -' in line
    for text in hidden:
        assert text not in line, line
    for text in shown:
        assert text in line, line


def test_lines_without_personal_data_are_left_alone():
    record = werkzeug_record("GET /crm/customers?page=3&sort=-id HTTP/1.1")
    AccessLogFilter().filter(record)
    assert record.args == ("GET /crm/customers?page=3&sort=-id HTTP/1.1", "200", "-")
    assert mask_urls("no url here") == "no url here"
