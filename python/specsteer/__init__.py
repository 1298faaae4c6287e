"""specsteer from Python: the device side of SpecSteer over the C library.

    edge = specsteer.Edge(slm="specialist.gguf", llm="generalist.gguf")   # or cloud="HOST:PORT"
    result = edge.generate("Write a review of ...", method="specsteer", max_tokens=64)
    print(result.text, result.counters.acceptance_rate)
    for piece in edge.generate("...", stream=True):
        print(piece, end="")
"""
import ctypes
import dataclasses
import queue
import threading
from typing import Iterator, List, Optional, Sequence, Union

from . import _library

__all__ = ["Edge", "Result", "Counters", "Stream", "SpecSteerError", "library_path"]


class SpecSteerError(RuntimeError):
    """A failure the C API reported; the message is the library's own."""


_lib = None
_lib_path = None
_lib_lock = threading.Lock()


def _c():
    global _lib, _lib_path
    with _lib_lock:
        if _lib is None:
            _lib, _lib_path = _library.load()
        return _lib


def library_path() -> str:
    """The libspecsteer.so this process uses."""
    _c()
    return _lib_path


def _take_error(err: ctypes.c_void_p, what: str) -> SpecSteerError:
    if err.value:
        msg = ctypes.string_at(err.value).decode("utf-8", "replace")
        _c().specsteer_string_free(err)
    else:
        msg = what + " failed"
    return SpecSteerError(msg)


def _b(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Counters:
    """What a generation did (specsteer_counters)."""

    n_generated: int
    n_drafted: int
    n_accepted: int
    round_trips: int
    bytes_up: int
    bytes_down: int
    acceptance_rate: float
    cancelled: bool
    fallback: bool
    resumed: int
    resume_tokens: int
    cached_tokens: int        # prompt tokens the device reused from its prefix cache
    cloud_cached_tokens: int  # tokens of x the cloud's LLM reused from its cache
    blocks_sent_early: int    # blocks drafted while the cloud verified the one before, sent at once
    blocks_dropped: int       # blocks drafted ahead that the verdict made useless


@dataclasses.dataclass(frozen=True)
class Result:
    text: str
    counters: Counters


class Stream:
    """Iterates over the text pieces of a running generation; they join to
    `result.text`. `result` is set once the iteration ends; `cancel()` stops
    the generation after the tokens decided so far."""

    def __init__(self, edge: "Edge", start):
        self._edge = edge
        # Bounded: the generation waits for a slow reader instead of running
        # ahead, so a cancel() takes effect a few pieces after it is asked.
        self._q: "queue.Queue" = queue.Queue(maxsize=4)
        self.result: Optional[Result] = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def _run(self, start):
        try:
            self.result = start(lambda piece: self._q.put(piece))
        except BaseException as e:  # handed to the consumer
            self._error = e
        finally:
            self._q.put(None)

    def __iter__(self) -> Iterator[str]:
        finished = False
        try:
            while True:
                piece = self._q.get()
                if piece is None:
                    finished = True
                    break
                yield piece
        finally:
            if not finished:  # the reader stopped early: stop the generation too
                self._edge.cancel()
                while self._q.get() is not None:
                    pass
            self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        self._edge.cancel()


class Edge:
    """One device: its small model (SLM+), the cloud (`cloud="HOST:PORT"`, a
    balancer, or several replicas "A,B,C") or the LLM in this process
    (`llm=`), and optionally the private profile store and LoRA adapters.
    One generation runs at a time per Edge."""

    def __init__(self, slm: str, cloud: Optional[str] = None, llm: Optional[str] = None,
                 profile_db: Optional[str] = None, auth_token: Optional[str] = None, threads: int = 0,
                 lora: Sequence[Union[str, tuple]] = ()):
        if (cloud is None) == (llm is None):
            raise ValueError("give cloud='HOST:PORT' (a remote cloud) or llm='file.gguf' (the cloud in this process)")
        lib = _c()
        err = ctypes.c_void_p()
        self._h = lib.specsteer_edge_load(_b(slm), _b(llm), _b(cloud), _b(auth_token), int(threads),
                                          ctypes.byref(err))
        if not self._h:
            raise _take_error(err, "specsteer_edge_load")
        self._busy = threading.Lock()
        try:
            if profile_db is not None:
                if lib.specsteer_edge_open_profile(self._h, _b(profile_db), ctypes.byref(err)) != 0:
                    raise _take_error(err, "specsteer_edge_open_profile")
            for entry in lora:
                path, scale = (entry, 1.0) if isinstance(entry, str) else entry
                if lib.specsteer_edge_add_lora(self._h, _b(path), float(scale), ctypes.byref(err)) != 0:
                    raise _take_error(err, "specsteer_edge_add_lora")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            _c().specsteer_edge_free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def cancel(self) -> None:
        """Stops the running generation after the tokens decided so far (any thread)."""
        if self._h:
            _c().specsteer_edge_cancel(self._h)

    def generate(self, prompt: str, *, user: Optional[str] = None, task: Optional[str] = None,
                 private_context: Optional[str] = None, method: str = "specsteer", max_tokens: int = 128,
                 temperature: float = 0.0, seed: int = 0, top_p: float = 1.0, top_k: int = 0, min_p: float = 0.0,
                 lam: float = 0.5, beta: float = 1.0, draft: int = 4, steer_k: int = 32, chat: bool = True,
                 system: Optional[str] = None, stop: Sequence[str] = (), retrieve_k: int = 4,
                 repeat_penalty: float = 1.0, repeat_last_n: int = 64, fallback: bool = False,
                 cloud_retries: int = 2, draft_min: int = 1, draft_p_min: float = 0.0, pipeline: bool = True,
                 stream: bool = False, _messages: Optional[Sequence[dict]] = None) -> Union[Result, Stream]:
        """One generation of `prompt` (x: the cloud sees it). `user` (with
        profile_db) personalizes from that user's entries and adapters for
        `task`; `private_context` gives private text directly. With
        stream=True returns a Stream of text pieces."""
        if not self._h:
            raise SpecSteerError("the edge is closed")
        lib = _c()
        p = _library.Params()
        lib.specsteer_params_init(ctypes.byref(p))
        keep = []  # bytes objects the struct points into, alive for the call

        def s(v):
            b = _b(v)
            keep.append(b)
            return b

        p.method = s(method)
        p.lambda_ = lam
        p.beta = beta
        p.draft = draft
        p.steer_k = steer_k
        p.n_predict = max_tokens
        p.seed = seed
        p.temperature = temperature
        p.top_p = top_p
        p.top_k = top_k
        p.min_p = min_p
        p.chat = 1 if chat else 0
        p.fallback = 1 if fallback else 0
        p.repeat_penalty = repeat_penalty
        p.repeat_last_n = repeat_last_n
        p.system = s(system)
        stops = [s(x) for x in stop]
        arr = (ctypes.c_char_p * max(1, len(stops)))(*stops)
        p.stop = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)) if stops else None
        p.n_stop = len(stops)
        p.user = s(user)
        p.task = s(task)
        p.retrieve_k = retrieve_k
        p.cloud_retries = cloud_retries
        p.draft_min = draft_min
        p.draft_p_min = draft_p_min
        p.pipeline = 1 if pipeline else 0
        x, ctx = s(prompt), s(private_context)
        msgs = None
        if _messages is not None:
            msgs = (_library.Message * max(1, len(_messages)))()
            for i, m in enumerate(_messages):
                if not isinstance(m, dict) or "role" not in m or "content" not in m:
                    raise SpecSteerError(f"messages[{i}] must be a dict with 'role' and 'content'")
                msgs[i].role, msgs[i].content = s(m["role"]), s(m["content"])

        def start(on_piece=None) -> Result:
            def cb(data, length, _user):
                on_piece(ctypes.string_at(data, length).decode("utf-8"))
                return 0

            c_cb = _library.TokenCallback(cb) if on_piece else _library.TokenCallback()
            err = ctypes.c_void_p()
            with self._busy:
                if msgs is None:
                    res = lib.specsteer_generate(self._h, x, ctx, ctypes.byref(p), c_cb, None, ctypes.byref(err))
                else:
                    res = lib.specsteer_chat(self._h, msgs, len(_messages), ctx, ctypes.byref(p), c_cb, None,
                                             ctypes.byref(err))
            if not res:
                raise _take_error(err, "specsteer_generate" if msgs is None else "specsteer_chat")
            try:
                text = ctypes.string_at(lib.specsteer_result_text(res)).decode("utf-8")
                raw = _library.RawCounters()
                lib.specsteer_result_counters(res, ctypes.byref(raw))
            finally:
                lib.specsteer_result_free(res)
            counters = Counters(raw.n_generated, raw.n_drafted, raw.n_accepted, raw.round_trips, raw.bytes_up,
                                raw.bytes_down, raw.acceptance_rate, bool(raw.cancelled), bool(raw.fallback),
                                raw.resumed, raw.resume_tokens, raw.cached_tokens, raw.cloud_cached_tokens,
                                raw.blocks_sent_early, raw.blocks_dropped)
            return Result(text, counters)

        if stream:
            return Stream(self, start)
        return start()

    def chat(self, messages: Sequence[dict], **kwargs) -> Union[Result, Stream]:
        """A reply to a conversation, OpenAI's message list ([{"role":
        "system"|"user"|"assistant", "content": ...}], the last one the
        user's). Earlier turns go to the cloud as history, except replies this
        edge cannot show the cloud already saw (written on the device alone,
        edited): those go empty. The edge's prefix cache makes the next turn
        prefill only its new message. Takes generate()'s keyword arguments."""
        if not messages:
            raise SpecSteerError("messages is empty")
        return self.generate(None, _messages=messages, **kwargs)

    def set_cache_ram(self, mib: float) -> None:
        """MiB of prompt KV the edge keeps for the next turn (256 by default; 0 = off)."""
        err = ctypes.c_void_p()
        if _c().specsteer_edge_set_cache_ram(self._h, int(mib * 1024 * 1024), ctypes.byref(err)) != 0:
            raise _take_error(err, "specsteer_edge_set_cache_ram")
