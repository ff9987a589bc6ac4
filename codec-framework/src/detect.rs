/// The answer of a protocol's detector to the first bytes of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// The prefix belongs to this protocol.
    Match,
    /// The prefix cannot belong to this protocol.
    NoMatch,
    /// More bytes are needed to decide.
    NeedMore,
}
