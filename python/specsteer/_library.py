"""Finds and binds libspecsteer.so (the C API, include/specsteer.h) with ctypes."""
import ctypes
import ctypes.util
import glob
import os
import sys


class Params(ctypes.Structure):
    """specsteer_params, field for field."""

    _fields_ = [
        ("method", ctypes.c_char_p),
        ("lambda_", ctypes.c_double),
        ("beta", ctypes.c_double),
        ("draft", ctypes.c_int),
        ("steer_k", ctypes.c_int),
        ("n_predict", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("temperature", ctypes.c_double),
        ("top_p", ctypes.c_double),
        ("chat", ctypes.c_int),
        ("fallback", ctypes.c_int),
        ("top_k", ctypes.c_int),
        ("min_p", ctypes.c_double),
        ("repeat_penalty", ctypes.c_double),
        ("repeat_last_n", ctypes.c_int),
        ("system", ctypes.c_char_p),
        ("stop", ctypes.POINTER(ctypes.c_char_p)),
        ("n_stop", ctypes.c_size_t),
        ("user", ctypes.c_char_p),
        ("task", ctypes.c_char_p),
        ("retrieve_k", ctypes.c_int),
        ("cloud_retries", ctypes.c_int),
        ("draft_min", ctypes.c_int),
        ("draft_p_min", ctypes.c_double),
        ("pipeline", ctypes.c_int),
    ]


class RawCounters(ctypes.Structure):
    """specsteer_counters, field for field."""

    _fields_ = [
        ("n_generated", ctypes.c_uint64),
        ("n_drafted", ctypes.c_uint64),
        ("n_accepted", ctypes.c_uint64),
        ("round_trips", ctypes.c_uint64),
        ("bytes_up", ctypes.c_uint64),
        ("bytes_down", ctypes.c_uint64),
        ("acceptance_rate", ctypes.c_double),
        ("cancelled", ctypes.c_int),
        ("fallback", ctypes.c_int),
        ("resumed", ctypes.c_uint64),
        ("resume_tokens", ctypes.c_uint64),
        ("cached_tokens", ctypes.c_uint64),
        ("cloud_cached_tokens", ctypes.c_uint64),
        ("blocks_sent_early", ctypes.c_uint64),
        ("blocks_dropped", ctypes.c_uint64),
    ]


class Message(ctypes.Structure):
    """specsteer_message."""

    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


TokenCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)


def _candidates():
    env = os.environ.get("SPECSTEER_LIBRARY")
    if env:
        yield env
        return  # an explicit choice is not second-guessed
    for prefix in dict.fromkeys([sys.prefix, "/usr/local", "/usr"]):
        for pattern in ("lib/libspecsteer.so*", "lib64/libspecsteer.so*", "lib/*-linux-gnu/libspecsteer.so*"):
            yield from sorted(glob.glob(os.path.join(prefix, pattern)))
    found = ctypes.util.find_library("specsteer")
    if found:
        yield found
    try:
        from . import _paths

        yield os.path.join(_paths.BUILD_DIR, "libspecsteer.so")
    except ImportError:  # a source checkout run in place: python/specsteer -> build/
        here = os.path.dirname(os.path.abspath(__file__))
        yield os.path.join(os.path.dirname(os.path.dirname(here)), "build", "libspecsteer.so")


def load():
    tried = []
    for path in _candidates():
        if not os.path.isabs(path) or os.path.exists(path):
            try:
                lib = ctypes.CDLL(path)
                return _bind(lib), path
            except OSError as e:
                tried.append(f"{path} ({e})")
        else:
            tried.append(f"{path} (missing)")
    raise OSError("libspecsteer.so not found; set SPECSTEER_LIBRARY or build it (cmake --build build "
                  "--target specsteer_c). Tried: " + "; ".join(tried))


def _bind(lib):
    c = ctypes
    sigs = {
        "specsteer_params_init": (None, [c.POINTER(Params)]),
        "specsteer_edge_load": (c.c_void_p, [c.c_char_p, c.c_char_p, c.c_char_p, c.c_char_p, c.c_int,
                                             c.POINTER(c.c_void_p)]),
        "specsteer_edge_free": (None, [c.c_void_p]),
        "specsteer_edge_open_profile": (c.c_int, [c.c_void_p, c.c_char_p, c.POINTER(c.c_void_p)]),
        "specsteer_edge_add_lora": (c.c_int, [c.c_void_p, c.c_char_p, c.c_float, c.POINTER(c.c_void_p)]),
        "specsteer_edge_cancel": (None, [c.c_void_p]),
        "specsteer_generate": (c.c_void_p, [c.c_void_p, c.c_char_p, c.c_char_p, c.POINTER(Params), TokenCallback,
                                            c.c_void_p, c.POINTER(c.c_void_p)]),
        "specsteer_chat": (c.c_void_p, [c.c_void_p, c.POINTER(Message), c.c_size_t, c.c_char_p, c.POINTER(Params),
                                        TokenCallback, c.c_void_p, c.POINTER(c.c_void_p)]),
        "specsteer_edge_set_cache_ram": (c.c_int, [c.c_void_p, c.c_uint64, c.POINTER(c.c_void_p)]),
        "specsteer_result_text": (c.c_void_p, [c.c_void_p]),
        "specsteer_result_counters": (None, [c.c_void_p, c.POINTER(RawCounters)]),
        "specsteer_result_free": (None, [c.c_void_p]),
        "specsteer_string_free": (None, [c.c_void_p]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib
