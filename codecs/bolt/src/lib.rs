//! SOFA Bolt v1/v2 codec for Strait.
