use bytes::{Bytes, BytesMut};
use http::HeaderMap;

use super::Rng;
use crate::h1::{BodyKind, ChunkLimits, DecodeError, Decoded, Decoder};

/// (data, trailers, bytes left in the buffer, done).
type Outcome = (Vec<u8>, Option<HeaderMap>, Vec<u8>, bool);

/// Everything a decoder yields for `input` fed in two parts split at `split`:
/// (data, trailers, bytes left in the buffer, done).
fn run(
    kind: BodyKind,
    limits: ChunkLimits,
    input: &[u8],
    split: usize,
) -> Result<Outcome, DecodeError> {
    let mut dec = Decoder::new(kind, limits);
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    let mut trailers = None;
    for part in [&input[..split], &input[split..]] {
        buf.extend_from_slice(part);
        loop {
            match dec.decode(&mut buf)? {
                Some(Decoded::Data(d)) => {
                    assert!(!d.is_empty(), "empty data frame");
                    data.extend_from_slice(&d);
                }
                Some(Decoded::Trailers(t)) => trailers = Some(t),
                None => break,
            }
        }
    }
    Ok((data, trailers, buf.to_vec(), dec.is_done()))
}

fn chunked_at_every_split(input: &[u8]) -> (Vec<u8>, Option<HeaderMap>, Vec<u8>) {
    let whole = run(
        BodyKind::Chunked,
        ChunkLimits::default(),
        input,
        input.len(),
    )
    .unwrap();
    assert!(whole.3, "not done: {input:?}");
    for split in 0..input.len() {
        let r = run(BodyKind::Chunked, ChunkLimits::default(), input, split).unwrap();
        assert_eq!(r, whole, "split {split}");
    }
    // And one byte at a time.
    let mut dec = Decoder::new(BodyKind::Chunked, ChunkLimits::default());
    let mut buf = BytesMut::new();
    let mut data = Vec::new();
    for b in input {
        buf.extend_from_slice(&[*b]);
        while let Some(d) = dec.decode(&mut buf).unwrap() {
            if let Decoded::Data(d) = d {
                data.extend_from_slice(&d);
            }
        }
    }
    assert_eq!(data, whole.0);
    (whole.0, whole.1, whole.2)
}

fn chunked_err(input: &[u8], limits: ChunkLimits) -> DecodeError {
    run(BodyKind::Chunked, limits, input, input.len()).unwrap_err()
}

#[test]
fn length_body_in_any_split_leaves_the_next_message() {
    let input = b"hello worldGET / HTTP/1.1\r\n";
    for split in 0..=input.len() {
        let (data, trailers, rest, done) =
            run(BodyKind::Length(11), ChunkLimits::default(), input, split).unwrap();
        assert_eq!(data, b"hello world");
        assert!(trailers.is_none() && done);
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }
    let (data, _, _, done) =
        run(BodyKind::Length(11), ChunkLimits::default(), b"hello", 2).unwrap();
    assert_eq!((data.as_slice(), done), (&b"hello"[..], false));
}

#[test]
fn length_data_is_a_slice_of_the_read_buffer() {
    let mut buf = BytesMut::from(&b"abcdef"[..]);
    let start = buf.as_ptr();
    let mut dec = Decoder::new(BodyKind::Length(4), ChunkLimits::default());
    assert_eq!(dec.remaining(), Some(4));
    let Some(Decoded::Data(d)) = dec.decode(&mut buf).unwrap() else {
        panic!("no data")
    };
    assert_eq!((d.as_ptr(), &d[..]), (start, &b"abcd"[..]));
    assert!(dec.is_done());
    assert_eq!(dec.remaining(), Some(0));
    assert_eq!(&buf[..], b"ef");
}

#[test]
fn chunked_bodies_at_every_split() {
    let (d, t, rest) = chunked_at_every_split(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT");
    assert_eq!(
        (d.as_slice(), t, rest.as_slice()),
        (&b"hello world"[..], None, &b"NEXT"[..])
    );

    let (d, _, rest) =
        chunked_at_every_split(b"A;name=value;x=\"q\"\r\n0123456789\r\n0;last\r\n\r\n");
    assert_eq!(
        (d.as_slice(), rest.as_slice()),
        (&b"0123456789"[..], &b""[..])
    );

    let (d, _, _) = chunked_at_every_split(b"1a  ;ext\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n");
    assert_eq!(d, b"abcdefghijklmnopqrstuvwxyz");

    let (d, t, rest) = chunked_at_every_split(
        b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\ncontent-length: 3\r\nTrailer: x\r\nX-Checksum: 2\r\n\r\nGET",
    );
    assert_eq!(d, b"abc");
    let t = t.unwrap();
    assert_eq!(
        t.get_all("x-checksum").iter().collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(t.len(), 2, "forbidden trailer fields dropped: {t:?}");
    assert_eq!(rest, b"GET");

    // Only forbidden trailers: no trailers frame.
    let (_, t, _) = chunked_at_every_split(b"0\r\nHost: a\r\n\r\n");
    assert!(t.is_none());
}

#[test]
fn chunked_syntax_errors() {
    let l = ChunkLimits::default();
    assert_eq!(
        chunked_err(b"5\nhello\r\n", l),
        DecodeError::BadChunkSize,
        "bare LF after size"
    );
    assert_eq!(
        chunked_err(b"5;a\nhello\r\n", l),
        DecodeError::BadChunkSize,
        "bare LF after ext"
    );
    assert_eq!(chunked_err(b"5\r\rhello", l), DecodeError::BadChunkSize);
    assert_eq!(
        chunked_err(b"\r\n", l),
        DecodeError::BadChunkSize,
        "no digits"
    );
    assert_eq!(chunked_err(b";a\r\n", l), DecodeError::BadChunkSize);
    assert_eq!(chunked_err(b"5 x\r\n", l), DecodeError::BadChunkSize);
    assert_eq!(chunked_err(b"g\r\n", l), DecodeError::BadChunkSize);
    assert_eq!(chunked_err(b"5\r\nhelloX\r\n", l), DecodeError::BadChunkEnd);
    assert_eq!(
        chunked_err(b"5\r\nhello\n0\r\n\r\n", l),
        DecodeError::BadChunkEnd,
        "bare LF after data"
    );
    assert_eq!(chunked_err(b"5\r\nhello\r\r", l), DecodeError::BadChunkEnd);
    assert_eq!(chunked_err(b"0\r\n\rX", l), DecodeError::BadTrailers);
    assert_eq!(
        chunked_err(b"0\r\nbad trailer\r\n\r\n", l),
        DecodeError::BadTrailers
    );
    assert_eq!(
        DecodeError::BadChunkSize.status(),
        http::StatusCode::BAD_REQUEST
    );
}

#[test]
fn chunk_size_bounds() {
    let l = ChunkLimits::default();
    assert_eq!(
        chunked_err(b"10000000000000000\r\n", l),
        DecodeError::ChunkSizeOverflow
    );
    assert_eq!(
        chunked_err(b"00000000000000001\r\n", l),
        DecodeError::ChunkSizeOverflow
    );
    // 16 digits are fine; the data then streams.
    let (d, _, _, done) = run(BodyKind::Chunked, l, b"ffffffffffffffff\r\nabc", 5).unwrap();
    assert_eq!((d.as_slice(), done), (&b"abc"[..], false));
}

#[test]
fn extension_and_trailer_limits() {
    let l = ChunkLimits {
        max_extension_bytes: 8,
        max_trailer_bytes: 32,
        max_trailers: 2,
    };
    // 8 bytes of extensions over the message are fine (";a=bcd" + ";e" = 8).
    let ok = run(BodyKind::Chunked, l, b"1;a=bcd\r\nx\r\n0;e\r\n\r\n", 3).unwrap();
    assert!(ok.3);
    assert_eq!(
        chunked_err(b"1;a=bcd\r\nx\r\n0;ef\r\n\r\n", l),
        DecodeError::ExtensionsTooLarge { max: 8 }
    );
    // Whitespace counts too: an endless BWS run is bounded.
    assert_eq!(
        chunked_err(&[b"1".as_slice(), &[b' '; 64]].concat(), l),
        DecodeError::ExtensionsTooLarge { max: 8 }
    );
    // A trailer section that never ends is bounded, whatever the split.
    let long = [b"0\r\nX: ".as_slice(), &[b'v'; 64]].concat();
    for split in 0..long.len() {
        let e = run(BodyKind::Chunked, l, &long, split).unwrap_err();
        assert_eq!(e, DecodeError::TrailersTooLarge { max: 32 });
    }
    let fits = run(BodyKind::Chunked, l, b"0\r\nA: 1\r\nB: 2\r\n\r\n", 4).unwrap();
    assert_eq!(fits.1.map(|t| t.len()), Some(2));
    assert_eq!(
        chunked_err(b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", l),
        DecodeError::BadTrailers
    );
}

#[test]
fn close_delimited_and_eof() {
    let mut dec = Decoder::new(BodyKind::Eof, ChunkLimits::default());
    let mut buf = BytesMut::from(&b"all of it"[..]);
    assert_eq!(
        dec.decode(&mut buf).unwrap(),
        Some(Decoded::Data(Bytes::from_static(b"all of it")))
    );
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    assert!(!dec.is_done());
    assert_eq!(dec.remaining(), None);
    dec.on_eof().unwrap();
    assert!(dec.is_done());

    let mut len = Decoder::new(BodyKind::Length(3), ChunkLimits::default());
    assert_eq!(len.on_eof(), Err(DecodeError::Incomplete));
    let mut ch = Decoder::new(BodyKind::Chunked, ChunkLimits::default());
    assert_eq!(ch.on_eof(), Err(DecodeError::Incomplete));
    let mut none = Decoder::new(BodyKind::None, ChunkLimits::default());
    assert!(none.is_done());
    none.on_eof().unwrap();
    let mut buf = BytesMut::from(&b"next"[..]);
    assert_eq!(none.decode(&mut buf).unwrap(), None);
    assert_eq!(&buf[..], b"next");
}

#[test]
fn random_chunked_input_never_panics_and_stays_bounded() {
    let mut rng = Rng::new(0xc0ffee);
    let limits = ChunkLimits {
        max_extension_bytes: 64,
        max_trailer_bytes: 128,
        max_trailers: 4,
    };
    for _ in 0..20_000 {
        let len = rng.below(400);
        let input = rng.http_bytes(len);
        let mut dec = Decoder::new(BodyKind::Chunked, limits);
        let mut buf = BytesMut::new();
        let mut pos = 0;
        'feed: while pos < input.len() {
            let n = 1 + rng.below(16);
            let end = (pos + n).min(input.len());
            buf.extend_from_slice(&input[pos..end]);
            pos = end;
            loop {
                match dec.decode(&mut buf) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            // Held back bytes are only ever a trailer section in progress.
            assert!(buf.len() <= limits.max_trailer_bytes + 16 || dec.is_done());
        }
    }
}

/// A connection's bytes: a chunked POST, a Content-Length POST and a GET in one stream,
/// fed in two parts split at every byte; each message ends exactly where the next begins.
#[test]
fn pipelined_messages_with_bodies_at_every_split() {
    use crate::h1::parse::{self, HeadLimits};
    let wire: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
4;x=y\r\nabcd\r\n0\r\nX-T: 1\r\n\r\n\
POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz\
GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
    for split in 0..=wire.len() {
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut feed = |buf: &mut BytesMut| {
            let parts: [&[u8]; 2] = [&wire[..split], &wire[split..]];
            if fed < 2 {
                buf.extend_from_slice(parts[fed]);
                fed += 1;
                true
            } else {
                false
            }
        };
        let mut seen = Vec::new();
        let mut decoder: Option<Decoder> = None;
        loop {
            if let Some(dec) = decoder.as_mut() {
                match dec.decode(&mut buf).unwrap() {
                    Some(Decoded::Data(d)) => {
                        seen.push(format!("data:{}", String::from_utf8_lossy(&d)))
                    }
                    Some(Decoded::Trailers(t)) => seen.push(format!("trailers:{}", t.len())),
                    None if dec.is_done() => {
                        seen.push("end".into());
                        decoder = None;
                    }
                    None => assert!(feed(&mut buf), "split {split}: stuck in a body"),
                }
                continue;
            }
            match parse::request(&mut buf, &HeadLimits::default()).unwrap() {
                Some(req) => {
                    seen.push(req.parts.uri.to_string());
                    decoder = Some(Decoder::new(req.body, ChunkLimits::default()));
                }
                None if feed(&mut buf) => {}
                None => break,
            }
        }
        // Data may arrive in pieces; join consecutive data entries for the comparison.
        let mut joined: Vec<String> = Vec::new();
        for s in seen {
            match (joined.last_mut(), s.strip_prefix("data:")) {
                (Some(last), Some(more)) if last.starts_with("data:") => last.push_str(more),
                _ => joined.push(s),
            }
        }
        assert_eq!(
            joined,
            [
                "/a",
                "data:abcd",
                "trailers:1",
                "end",
                "/b",
                "data:xyz",
                "end",
                "/c",
                "end"
            ],
            "split {split}"
        );
        assert!(buf.is_empty());
    }
}
