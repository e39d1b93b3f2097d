"""crnn.memory: glibc's malloc told to keep freed memory, so a training step does not page-fault its buffers."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from crnn import memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_steps_stop_page_faulting_their_buffers() -> None:
    # mallopt changes this process's malloc for good; harmless for the test run (memory is kept, not lost)
    memory.keep_freed_memory.cache_clear()
    assert memory.keep_freed_memory()

    def faults_of_one_round() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(3):
            x = torch.ones(64, 96, 32, 50)  # 39 MB: above glibc's largest mmap threshold (32 MB)
            del x
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    for _ in range(3):  # the heap grows to the block's size (glibc takes a few rounds to settle)
        faults_of_one_round()
    # untouched malloc re-faults such a block every time (9,600 faults each, 28,800 per round, measured);
    # kept memory does not (the least of a few rounds: another thread of the process may fault meanwhile)
    assert min(faults_of_one_round() for _ in range(4)) < 500


def test_turned_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRNN_MALLOC_TUNE", "0")
    memory.keep_freed_memory.cache_clear()
    try:
        assert memory.keep_freed_memory() is False
    finally:
        memory.keep_freed_memory.cache_clear()
