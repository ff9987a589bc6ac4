//! The request-smuggling table (`crate::h1::smuggling`) run against the codec at every split.

use bytes::BytesMut;

use crate::h1::parse::{self, BodyKind, HeadLimits};
use crate::h1::smuggling::{Outcome, cases};
use crate::h1::{ChunkLimits, Decoded, Decoder};

/// Feeds `raw` as `raw[..split]` then the rest, as a server would read it: a head, then
/// its body, then (the input being the whole connection) EOF. Need-more must leave the
/// buffer untouched.
fn run(raw: &[u8], limits: &HeadLimits, split: usize) -> Outcome {
    let mut buf = BytesMut::new();
    let mut framed: Option<(BodyKind, Decoder)> = None;
    let mut data = Vec::new();
    let mut trailers = Vec::new();
    for piece in [&raw[..split], &raw[split..]] {
        buf.extend_from_slice(piece);
        loop {
            match &mut framed {
                None => {
                    let before = buf.clone();
                    match parse::request(&mut buf, limits) {
                        Ok(Some(req)) => {
                            framed =
                                Some((req.body, Decoder::new(req.body, ChunkLimits::default())))
                        }
                        Ok(None) => {
                            assert_eq!(buf, before, "need-more changed the buffer");
                            break;
                        }
                        Err(e) => return Outcome::HeadErr(e),
                    }
                }
                Some((kind, dec)) => match dec.decode(&mut buf) {
                    Ok(Some(Decoded::Data(d))) => data.extend_from_slice(&d),
                    Ok(Some(Decoded::Trailers(t))) => {
                        trailers.extend(t.keys().map(|k| k.as_str().to_owned()))
                    }
                    // Done, or needs more; a done body leaves the rest for the next request.
                    Ok(None) => break,
                    Err(e) => return Outcome::BodyErr(*kind, e),
                },
            }
        }
    }
    match framed {
        None => Outcome::Pending,
        Some((kind, mut dec)) => match dec.on_eof() {
            Ok(()) => Outcome::Request {
                body: kind,
                data,
                trailers,
                rest: buf.len(),
            },
            Err(e) => Outcome::BodyErr(kind, e),
        },
    }
}

#[test]
fn smuggling_table_at_every_split() {
    let cases = cases();
    let (mut rejects, mut accepts) = (0, 0);
    for case in &cases {
        let whole = run(&case.raw, &case.limits, case.raw.len());
        let raw = String::from_utf8_lossy(&case.raw);
        assert_eq!(whole, case.want, "{}: {raw:?}", case.name);
        let status = match &whole {
            Outcome::HeadErr(e) => Some(e.status()),
            Outcome::BodyErr(_, e) => Some(e.status()),
            Outcome::Request { .. } => None,
            Outcome::Pending => panic!("{}: no case may end inside a head", case.name),
        };
        assert_eq!(status, case.status, "{}: status", case.name);
        match status {
            Some(_) => rejects += 1,
            None => accepts += 1,
        }
        for split in 0..case.raw.len() {
            let parts = run(&case.raw, &case.limits, split);
            assert_eq!(parts, whole, "{}: split at {split}: {raw:?}", case.name);
        }
    }
    assert!(
        rejects >= 60 && accepts >= 10,
        "{rejects} rejects, {accepts} accepts"
    );
}

#[test]
fn smuggling_cases_have_unique_names() {
    let cases = cases();
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len());
}
