"""Problems with input files: one message per bad example, raised or tallied.

Each problem is a message that names the file ("FILE: DETAIL"). By default
it raises (`ValueError` eagerly; `tf.errors.InvalidArgumentError` from the
iterator, with the message); with `skip_invalid=True` the example is
dropped, a warning is logged and `SkipTally` keeps the count, the reasons and
the files. Where problems are found: `files` (listing and pairing),
`file_check` (up-front checks), `decode` (inside `tf.data`).
"""

import collections
import logging
import threading

logger = logging.getLogger("danet_keras.data")

_MAX_LISTED = 5

# (how the detail of a problem message starts, its reason); see `problem_reason`.
REASONS = (
    ("image has no label file", "image without label"),
    ("label has no image file", "label without image"),
    ("file listed in the split is missing", "missing file"),
    ("cannot be read", "unreadable file"),
    ("empty file", "empty file"),
    ("not a PNG or JPEG", "not a PNG or JPEG file"),
    ("truncated", "truncated file"),
    ("damaged", "damaged file"),
    ("could not be decoded", "damaged file"),
    ("unreadable image", "damaged file"),
    ("unreadable SBD .mat", "damaged file"),
    ("label is a JPEG", "label not PNG"),
    ("label PNG of mode", "label not 8-bit"),
    ("colour label PNG", "colour label"),
    ("label size", "size mismatch"),
    ("label value", "label value not an id"),
)


def problem_reason(problem):
    """The short reason of a problem message (a key of `SkipTally.reasons`), or "other"."""
    detail = problem_file_and_detail(problem)[1]
    for start, reason in REASONS:
        if detail.startswith(start):
            return reason
    return "other"


def problem_file_and_detail(problem):
    """(file named by a problem message, what is wrong): messages are "FILE: DETAIL"."""
    name, separator, detail = problem.partition(": ")
    return (name, detail) if separator else ("", problem)


class SkipTally:
    """The examples a reader skipped (with `skip_invalid=True`) and why.

    Each bad example is counted once, however often it is met (every epoch
    meets it again; `events` counts those).

    Attributes:
        count: number of distinct skipped examples so far.
        problems: their messages, each naming a file and its problem.
        reasons: {reason: number of examples}, see `problem_reason`.
        files: the files named by the problems.
        events: skips including repeats.
    """

    def __init__(self, name):
        self.name = name
        self.problems = []
        self.events = 0
        self._seen = set()
        self._lock = threading.Lock()

    @property
    def count(self):
        return len(self.problems)

    @property
    def reasons(self):
        with self._lock:
            return dict(collections.Counter(problem_reason(p) for p in self.problems))

    @property
    def files(self):
        with self._lock:
            return [problem_file_and_detail(p)[0] for p in self.problems]

    def add(self, problem):
        """Records a skip; True when `problem` is new (it is logged then)."""
        with self._lock:
            self.events += 1
            if problem in self._seen:
                return False
            self._seen.add(problem)
            self.problems.append(problem)
            count = len(self.problems)
        logger.warning("%s: skipped %s (%d skipped so far)", self.name, problem, count)
        return True

    def summary(self):
        """One line: how many examples were skipped, per reason."""
        if not self.count:
            return f"{self.name}: no example skipped"
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.reasons.items()))
        return f"{self.name}: {self.count} example(s) skipped ({reasons})"

    def __repr__(self):
        return f"SkipTally({self.name!r}, count={self.count}, reasons={self.reasons})"


def kept_after(kept, problems, skip_invalid, tally, what, nothing_left):
    """`kept` after `raise_or_skip(problems, ...)`; a ValueError "what: nothing_left" when empty."""
    raise_or_skip(problems, skip_invalid, tally, what)
    if not kept:
        raise ValueError(f"{what}: {nothing_left}")
    return kept


def raise_or_skip(problems, skip_invalid, tally, what):
    """Raises one ValueError listing `problems`, or records them in `tally`.

    Args:
        problems: list of messages, each naming a file.
        skip_invalid: record and go on instead of raising.
        tally: `SkipTally` for skipped problems.
        what: what was being checked, for the message.
    """
    if not problems:
        return
    if not skip_invalid:
        listed = "\n  ".join(problems[:_MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        )
        raise ValueError(
            f"{what}: {len(problems)} invalid example(s) (pass skip_invalid=True to skip "
            f"them):\n  {listed}{more}"
        )
    for problem in problems:
        tally.add(problem)
    logger.warning("%s: %s: %d example(s) skipped in total", tally.name, what, tally.count)
