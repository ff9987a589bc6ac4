//! Drives a codec over connections: downstream request serving and multiplexed upstream clients.
