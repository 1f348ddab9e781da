"""Raw bytes to a bounded tree of `Entity`s, for any input.

`split` finds the parts by scanning the buffer for boundary delimiters; what it does not
model, and any error inside it, goes to `feedtree` (the stdlib feed parser), so every
input is split as the feed parser splits it. Both are bounded the same way:

* Parts nested deeper than the depth limit are parsed as opaque leaves ("flat"), so
  hostile nesting neither recurses without end nor costs a walk per level.
* Splitting stops once the part limit is reached, so a message of a million empty parts
  does not become a million Message objects.
* Every part records the offsets of its first header line, its body and its end in the
  raw bytes (see `entity`).
"""

from __future__ import annotations

from archive.mime.entity import POLICY, Entity, Tree, describe
from archive.mime.feedtree import feed_parse_tree, headers_only, part_limit
from archive.mime.split import PartLimitReached, Splitter

__all__ = ["POLICY", "Entity", "Tree", "describe", "parse_tree"]


def parse_tree(raw: bytes, *, max_depth: int, max_parts: int) -> Tree:
    """Parse `raw` into entities; never raises for any input.

    A split stopped by the part limit keeps every part read so far (`Tree.problem` says
    so); an input the splitter leaves alone (`split.Unsupported`), a RecursionError or any
    other error inside it is parsed by the feed parser instead.
    """
    splitter = Splitter(raw, max_depth, max_parts)
    try:
        return Tree(splitter.split(), raw)
    except PartLimitReached:
        problem = part_limit(max_parts)
    except Exception:
        return feed_parse_tree(raw, max_depth=max_depth, max_parts=max_parts)
    stack = splitter.open_entities()
    if stack:
        return Tree(stack[0], raw, problem)
    return headers_only(raw, problem)  # pragma: no cover - the root is made first
