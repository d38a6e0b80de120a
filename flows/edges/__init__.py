"""The flow's edges: where records come from and where outputs go.

`files` (JSONL replay in, JSONL files out), `sim` (the built-in simulator as a
source) and `kafka/` (topics in and out). Edges turn bytes into `flows.lines.Lines`
and output batches into bytes somewhere; they hold no analytics. They may import
Bytewax, `flows.contract`, `flows.lines`, `flows.watermark` and the settings types
of `flows.config`; nothing pure imports them.
"""
