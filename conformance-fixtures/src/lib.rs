//! Golden frames captured from real encoders, with their expected fields.
