//! State-machine tests of the group coordinator, driven with explicit clocks.

mod classic;
mod consumer;
mod coordinator;
mod txn_offsets;
