"""One pure step per stage: typed state, typed events in, actions out.

The six processes (`processes/<stage>.py`) decode a message, call the step and carry out what it
returns (send, write shared memory, journal); the in-process replay (`mm.engine`) calls the same
steps in the lockstep order with no sockets. One engine: the same decisions in sim, replay,
paper and live.
"""
