use std::io::{self, Write};

use super::{PIPE_BUFFER, PipeDecoder};

/// Bytes that compress, but not to nothing: a few MiB of counting text.
fn sample(len: usize) -> Vec<u8> {
    (0..).flat_map(|i: u32| format!("record {i} of the stream, ").into_bytes()).take(len).collect()
}

/// A pipe that keeps what it got and how it got it.
#[derive(Default)]
struct Pipe {
    bytes: Vec<u8>,
    writes: Vec<usize>,
}

impl Write for &mut Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        self.writes.push(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn decode_in_chunks(compressed: &[u8], chunk: usize, pipe: &mut Pipe) -> io::Result<()> {
    let mut decoder = PipeDecoder::new(pipe)?;
    for piece in compressed.chunks(chunk) {
        decoder.decode(piece)?;
    }
    decoder.finish()
}

#[test]
fn any_chunking_decodes_to_the_original_in_full_pipe_buffers() {
    let original = sample(5 * PIPE_BUFFER + 12_345);
    let compressed = zstd::encode_all(&original[..], 3).unwrap();
    for chunk in [1, 7, 4096, 65_536, compressed.len()] {
        let mut pipe = Pipe::default();
        decode_in_chunks(&compressed, chunk, &mut pipe).unwrap();
        assert!(pipe.bytes == original, "chunks of {chunk}: the output differs");
        // Every write but the last fills the buffer: few large writes into the pipe.
        let (last, full) = pipe.writes.split_last().unwrap();
        assert!(full.iter().all(|&n| n == PIPE_BUFFER), "chunks of {chunk}: writes {:?}", pipe.writes);
        assert_eq!(*last, original.len() % PIPE_BUFFER);
    }
}

#[test]
fn frames_one_after_the_other_are_one_stream() {
    let (first, second) = (sample(300_000), sample(2 * PIPE_BUFFER));
    let mut compressed = zstd::encode_all(&first[..], 3).unwrap();
    compressed.extend(zstd::encode_all(&second[..], 19).unwrap());
    let mut pipe = Pipe::default();
    decode_in_chunks(&compressed, 10_000, &mut pipe).unwrap();
    assert!(pipe.bytes == [first, second].concat());
}

#[test]
fn a_stream_cut_in_a_frame_is_refused_at_its_end() {
    let compressed = zstd::encode_all(&sample(3 * PIPE_BUFFER)[..], 3).unwrap();
    let cut = &compressed[..compressed.len() / 2];
    let err = decode_in_chunks(cut, 4096, &mut Pipe::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert!(err.to_string().contains("middle of a frame"), "{err}");
}

#[test]
fn bytes_that_are_not_zstd_fail_at_once() {
    let err = decode_in_chunks(&sample(10_000), 4096, &mut Pipe::default()).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("unknown frame descriptor"), "{err}");
}

#[test]
fn a_closed_pipe_stops_the_decoder_with_its_error() {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let compressed = zstd::encode_all(&sample(3 * PIPE_BUFFER)[..], 3).unwrap();
    let mut decoder = PipeDecoder::new(Closed).unwrap();
    let err = compressed.chunks(65_536).try_for_each(|piece| decoder.decode(piece)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}
