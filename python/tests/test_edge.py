"""The Python package over the real C library and the bundled MiniLaMP pair:
results, streaming, counters, errors, cancellation, the profile store, and
the network cloud through `specsteer cloud serve`."""
import os
import subprocess
import threading
import time

import pytest

import specsteer

ROOT = os.environ.get("SPECSTEER_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.environ.get("SPECSTEER_BIN", os.path.join(ROOT, "build", "specsteer"))
SLM = os.path.join(ROOT, "models/minilamp/specialist.gguf")
LLM = os.path.join(ROOT, "models/minilamp/generalist.gguf")
DATA = os.path.join(ROOT, "data/minilamp/review.jsonl")
X = ('Generate a review text written by a reviewer who has a given an overall rating of "4.0" for a product with '
     'description "travel kettle". The summary of the review text is "Boils fast, the lid is loose".')


@pytest.fixture(scope="module")
def edge():
    with specsteer.Edge(slm=SLM, llm=LLM, threads=1) as e:
        yield e


def test_generate_returns_text_and_counters(edge):
    r = edge.generate(X, method="specsteer", max_tokens=48, seed=3)
    assert isinstance(r, specsteer.Result)
    assert r.text.strip()
    c = r.counters
    assert isinstance(c, specsteer.Counters)
    assert 0 < c.n_generated <= 48
    assert c.n_drafted >= c.n_accepted > 0
    assert c.round_trips > 0 and c.bytes_up > 0 and c.bytes_down > 0
    assert 0 < c.acceptance_rate <= 1
    assert not c.cancelled and not c.fallback
    # Same seed, same text; greedy local methods too.
    assert edge.generate(X, method="specsteer", max_tokens=48, seed=3).text == r.text
    assert edge.generate(X, method="slm", max_tokens=16).counters.round_trips == 0


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_stream_pieces_join_to_the_text(edge, temperature):
    whole = edge.generate(X, max_tokens=40, temperature=temperature, seed=11)
    stream = edge.generate(X, max_tokens=40, temperature=temperature, seed=11, stream=True)
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces) == whole.text
    assert stream.result.text == whole.text


def test_chat_keeps_the_conversation_and_reuses_it(edge):
    msgs = [{"role": "user", "content": X}]
    first = edge.chat(msgs, max_tokens=24, seed=1)
    msgs += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Say that again, shorter."}]
    second = edge.chat(msgs, max_tokens=24, seed=1)
    assert second.text.strip()
    assert second.counters.cached_tokens > 0, "the second turn re-read the first"
    streamed = "".join(edge.chat(msgs, max_tokens=24, seed=1, stream=True))
    assert streamed == second.text
    edge.set_cache_ram(0)
    try:
        again = edge.chat(msgs, max_tokens=24, seed=1)
    finally:
        edge.set_cache_ram(256)
    assert again.text == second.text and again.counters.cached_tokens == 0
    with pytest.raises(specsteer.SpecSteerError, match="user message"):
        edge.chat([{"role": "assistant", "content": "hi"}])


def test_errors_carry_the_c_api_message(edge):
    with pytest.raises(specsteer.SpecSteerError, match="method"):
        edge.generate(X, method="no-such-method")
    with pytest.raises(specsteer.SpecSteerError, match="n_predict|n-predict|-n"):
        edge.generate(X, max_tokens=0)
    with pytest.raises(specsteer.SpecSteerError, match="nothing.gguf"):
        specsteer.Edge(slm="/nonexistent/nothing.gguf", llm=LLM)
    with pytest.raises(ValueError):
        specsteer.Edge(slm=SLM)


def test_cancel_from_another_thread(edge):
    stream = edge.generate(X, max_tokens=200, stream=True, method="lightcosteer")
    got = []
    for piece in stream:
        got.append(piece)
        if len(got) == 3:
            t = threading.Thread(target=stream.cancel)
            t.start()
            t.join()
    assert stream.result.counters.cancelled
    assert stream.result.counters.n_generated < 20
    assert "".join(got) == stream.result.text


def test_profile_user(tmp_path):
    db = str(tmp_path / "p.db")
    subprocess.run([BIN, "profile", "import", "--db", db, "--task", "review", "--data", DATA], check=True,
                   stdout=subprocess.DEVNULL)
    import json
    rec = json.loads(open(DATA).readline())
    with specsteer.Edge(slm=SLM, llm=LLM, profile_db=db, threads=1) as e:
        r = e.generate(rec["input"], user=rec["reviewerId"], task="review", max_tokens=32)
        assert r.text.strip()
        with pytest.raises(specsteer.SpecSteerError, match="nobody"):
            e.generate(rec["input"], user="nobody", task="review")


def test_network_cloud():
    port_file = "/tmp/specsteer-pytest-port-%d" % os.getpid()
    if os.path.exists(port_file):
        os.remove(port_file)
    srv = subprocess.Popen([BIN, "cloud", "serve", "--llm", LLM, "--slm", SLM, "--listen", "127.0.0.1:0",
                            "--port-file", port_file, "-t", "1"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        addr = "127.0.0.1:" + open(port_file).read().strip()
        with specsteer.Edge(slm=SLM, cloud=addr, threads=1) as remote, \
                specsteer.Edge(slm=SLM, llm=LLM, threads=1) as local:
            a = remote.generate(X, max_tokens=32, seed=5, temperature=0.7)
            b = local.generate(X, max_tokens=32, seed=5, temperature=0.7)
            assert a.text == b.text
            assert a.counters.resumed == 0
    finally:
        srv.terminate()
        srv.wait()


def test_library_path_is_reported():
    assert specsteer.library_path().endswith((".so", ".so.0", ".so.0.1.0")) or "libspecsteer" in specsteer.library_path()
