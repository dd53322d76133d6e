"""The echo processor: answers without a network, for tests, benchmarks and trying things."""

import time

from batches.processors.base import FORM_OPTIONS, Processor

MAX_DELAY = 10


class EchoProcessor(Processor):
    """Answers without a network: the question and the turn number. ``delay``
    (seconds, 0 to 10) simulates a slow model in tests and benchmarks."""

    name = "echo"
    accepts = {
        **FORM_OPTIONS,
        "delay": f"seconds per item, a number from 0 to {MAX_DELAY} (default 0)",
    }

    def __init__(self, options: dict):
        super().__init__(options)
        delay = options.get("delay", 0)
        # Refused here, at upload, rather than capped in the worker: a batch runs
        # with the options its owner was told were accepted.
        number = isinstance(delay, int | float) and not isinstance(delay, bool)
        if not (number and 0 <= delay <= MAX_DELAY):
            raise ValueError(
                f"The echo processor's delay must be a number of seconds from 0 to "
                f"{MAX_DELAY}, not {delay!r}."
            )
        self.delay = float(delay)

    def process(self, input: dict, history: list[dict]) -> dict:
        if self.delay:
            time.sleep(self.delay)
        turn = len(history) + 1
        return {"text": f"echo: {input.get('question', '')} (turn {turn})", "turn": turn}
