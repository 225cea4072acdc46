"""The activity recorder: writes events to the database in batches, off the message path.

`record()` only appends to an in-memory buffer. A background task writes the buffer every
`flush_interval` seconds, or as soon as `batch_size` events are waiting. Each batch is one
transaction that appends to the event log and maintains contacts, groups, memberships and
the daily activity rollup with bulk upserts.

When the database is unreachable (`bot.storage.health.is_outage`) nothing is given up: the
batch goes back to the buffer and the recorder waits for the database's health probe to see
it back. The buffer is bounded (`buffer_max_events`, `buffer_max_bytes`); past a limit the
oldest chat messages are dropped first, never joins, leaves or the bot's own messages, and
the drops are counted. A batch the database refuses for its data is split in halves until
the refused events are alone; only those are set aside, with the database's reason, in a
JSON-lines file under the data directory, which `replay_dead_letter()` (run at start-up and
by `qunbot deadletter replay`) writes again.

The package, along its seams:
- `service`: the `Recorder` (buffering, the flush task, outages, splitting refused batches);
- `buffer`: the bounded buffer and what it sheds when full;
- `fold`: a batch of events folded into rows; `contacts`: which contacts need a row;
- `writer`: one batch written in one transaction; `membership`: stays and member lists;
- `deadletter`: the file of set-aside events, its path, and events as JSON.
"""

from bot.storage.recorder.contacts import CONTACT_REFRESH
from bot.storage.recorder.deadletter import data_path, default_dead_letter_path, event_from_json, event_to_json
from bot.storage.recorder.fold import RECORDED_TYPES, OutboundMessage
from bot.storage.recorder.service import DROPPED, Recorder

__all__ = [
    "CONTACT_REFRESH",
    "DROPPED",
    "RECORDED_TYPES",
    "OutboundMessage",
    "Recorder",
    "data_path",
    "default_dead_letter_path",
    "event_from_json",
    "event_to_json",
]
