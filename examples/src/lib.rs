//! Runnable examples of Palisade; see the `examples/` folder.
