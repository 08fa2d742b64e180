//! Data-parallel training (`--peers N --rank R --coordinator HOST:PORT`): N processes, one per
//! device, on one machine or several, each computing the gradients of its share of every step's
//! micro-batches; the gradients are summed over the peers and every peer takes the same AdamW
//! step, so all hold the same weights, and the run equals a one-process run with the same
//! effective batch (`batch_size` × `grad_accumulation`) up to the order of the float sums.
//!
//! Why processes and a hand-made exchange: burn 0.22 has no `burn-collective` (its last release
//! is 0.21, for burn 0.21's tensors), and burn 0.22's in-tree `DistributedOps::all_reduce` is
//! implemented for CUDA only (`unimplemented!` on flex and ndarray, no transport on wgpu). One
//! process per device is also how PyTorch's DDP runs, and it keeps flex's process-wide random
//! generator (dropout masks) to one peer.
//!
//! The exchange is a star over TCP: peer 0 (the coordinator) listens, the others connect; every
//! step each peer sends its gradients, peer 0 adds them in rank order (the same sum every time)
//! and sends the sum back. Every wait is bounded by `--peer-timeout`, so a peer that dies or
//! hangs makes the others fail with a message that names it instead of waiting for ever.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

/// The flags of a data-parallel run (`adam distill`, `adam teacher train`).
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// Processes training together, one per device (on this machine or others): each computes
    /// the gradients of its share of every step's micro-batches. 1: train alone.
    #[arg(long, default_value_t = 1, help_heading = "Data-parallel training")]
    pub peers: usize,
    /// This process's place among the peers, 0 to N-1. Peer 0 is the coordinator: it listens on
    /// --coordinator and alone writes the log, checkpoints and the trained model.
    #[arg(long, default_value_t = 0, help_heading = "Data-parallel training")]
    pub rank: usize,
    /// Where peer 0 listens and the others connect.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:29517", help_heading = "Data-parallel training")]
    pub coordinator: String,
    /// Seconds to wait for a peer (to connect, or to send its part of a step) before failing;
    /// longer than the slowest step plus a dev evaluation.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, help_heading = "Data-parallel training")]
    pub peer_timeout: u64,
    /// Micro-batches this process computes at once, each on one core (flex only; the result
    /// does not change). Default: one per core (at most 8), up to the micro-batches each step
    /// gives this process (grad_accumulation / peers), so 1 without gradient accumulation. Each
    /// worker holds a micro-batch's activations.
    #[arg(long, value_name = "N", help_heading = "Data-parallel training")]
    pub workers: Option<usize>,
}

impl PeerArgs {
    /// How many workers this process runs ([`crate::workers::worker_count`]).
    pub fn worker_count(&self, device: &Device, grad_accumulation: usize) -> usize {
        crate::workers::worker_count(self.workers, device, grad_accumulation / self.peers.max(1))
    }

    /// Connects to the other peers, or `None` when training alone.
    pub fn connect(&self) -> Result<Option<Peers>> {
        if self.peers == 0 {
            bail!("--peers must be at least 1");
        }
        if self.rank >= self.peers {
            bail!("--rank {} is not below --peers {} (ranks are 0 to {})", self.rank, self.peers, self.peers - 1);
        }
        if self.peers == 1 {
            return Ok(None);
        }
        Peers::connect(self.rank, self.peers, &self.coordinator, Duration::from_secs(self.peer_timeout.max(1)))
            .map(Some)
    }

    /// Refuses a step that the peers cannot share evenly: each computes `grad_accumulation / N`
    /// micro-batches of it. `named` is how the user gave the value (a flag or a config key).
    pub fn check_grad_accumulation(&self, grad_accumulation: usize, named: impl std::fmt::Display) -> Result<()> {
        if self.peers > 1 && !grad_accumulation.is_multiple_of(self.peers) {
            bail!(
                "{named} is not a multiple of --peers {}: each peer computes grad_accumulation / peers \
                 micro-batches of every step (for the same effective batch with more peers, raise the \
                 accumulation and lower the batch size)",
                self.peers
            );
        }
        Ok(())
    }

    /// Whether this process writes the run's files (peer 0, or training alone).
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }
}

const MAGIC: &[u8; 8] = b"ADAMDP01";
/// The longest peer 0 waits for a new connection's greeting.
const GREETING: Duration = Duration::from_secs(10);

/// This process's links to the other peers of a data-parallel run.
pub struct Peers {
    rank: usize,
    size: usize,
    /// Peer 0: the stream of each other peer, by rank − 1. Others: the stream to peer 0.
    links: Vec<TcpStream>,
    coordinator: String,
    timeout: Duration,
}

impl Peers {
    fn connect(rank: usize, size: usize, coordinator: &str, timeout: Duration) -> Result<Self> {
        let links =
            if rank == 0 { accept(size, coordinator, timeout)? } else { vec![join(rank, size, coordinator, timeout)?] };
        for link in &links {
            link.set_read_timeout(Some(timeout))?;
            link.set_write_timeout(Some(timeout))?;
            link.set_nodelay(true)?;
        }
        eprintln!("peer {rank} of {size}: connected through {coordinator}");
        Ok(Self { rank, size, links, coordinator: coordinator.to_string(), timeout })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// Who is at the other end of `links[i]`, for messages.
    fn who(&self, i: usize) -> String {
        if self.rank == 0 {
            format!("peer {}", i + 1)
        } else {
            format!("peer 0 (the coordinator, {})", self.coordinator)
        }
    }

    fn send(&self, i: usize, bytes: &[u8], during: &str) -> Result<()> {
        let mut link = &self.links[i];
        link.write_all(&(bytes.len() as u64).to_le_bytes())
            .and_then(|_| link.write_all(bytes))
            .and_then(|_| link.flush())
            .map_err(|e| self.lost(i, e, during))
    }

    fn recv(&self, i: usize, during: &str) -> Result<Vec<u8>> {
        let mut link = &self.links[i];
        let mut len = [0u8; 8];
        link.read_exact(&mut len).map_err(|e| self.lost(i, e, during))?;
        let len = u64::from_le_bytes(len) as usize;
        let mut bytes = vec![0u8; len];
        link.read_exact(&mut bytes).map_err(|e| self.lost(i, e, during))?;
        Ok(bytes)
    }

    fn lost(&self, i: usize, e: std::io::Error, during: &str) -> anyhow::Error {
        let who = self.who(i);
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => anyhow::anyhow!(
                "{who} did not answer within {} s during {during} (--peer-timeout); is it still running?",
                self.timeout.as_secs()
            ),
            _ => anyhow::anyhow!(
                "lost {who} during {during}: {e} (it stopped or its machine is unreachable; see its own output)"
            ),
        }
    }

    /// Checks that every peer has the same `values` (named), so that a peer started with another
    /// config or data is refused before any step. Every peer fails with the same message.
    pub fn agree(&self, values: &[(&str, u64)]) -> Result<()> {
        let mine: Vec<u8> = values.iter().flat_map(|(_, v)| v.to_le_bytes()).collect();
        let during = "the start (comparing the peers' runs)";
        let verdict = if self.rank == 0 {
            let mut problem = String::new();
            for i in 0..self.links.len() {
                let theirs = self.recv(i, during)?;
                if problem.is_empty() && theirs != mine {
                    problem = describe_difference(i + 1, values, &theirs);
                }
            }
            for i in 0..self.links.len() {
                self.send(i, problem.as_bytes(), during)?;
            }
            problem
        } else {
            self.send(0, &mine, during)?;
            String::from_utf8_lossy(&self.recv(0, during)?).into_owned()
        };
        if verdict.is_empty() { Ok(()) } else { bail!("{verdict}") }
    }

    /// Peer 0's `bytes`, on every peer (`bytes` is read on peer 0 only).
    pub fn broadcast(&self, bytes: Vec<u8>, during: &str) -> Result<Vec<u8>> {
        if self.rank == 0 {
            for i in 0..self.links.len() {
                self.send(i, &bytes, during)?;
            }
            Ok(bytes)
        } else {
            self.recv(0, during)
        }
    }

    /// Replaces `values` on every peer by their sum over the peers, added in rank order on peer 0
    /// (so every run adds them alike).
    pub fn all_reduce_sum<T: Element>(&self, values: &mut [T], during: &str) -> Result<()> {
        let byte_len = values.len() * T::SIZE;
        if self.rank == 0 {
            for i in 0..self.links.len() {
                let theirs = self.recv(i, during)?;
                if theirs.len() != byte_len {
                    bail!("{} sent {} bytes during {during} where {byte_len} were expected", self.who(i), theirs.len());
                }
                for (v, chunk) in values.iter_mut().zip(theirs.chunks_exact(T::SIZE)) {
                    *v = v.add(T::from_le(chunk));
                }
            }
            let bytes = to_bytes(values);
            for i in 0..self.links.len() {
                self.send(i, &bytes, during)?;
            }
        } else {
            self.send(0, &to_bytes(values), during)?;
            let sum = self.recv(0, during)?;
            if sum.len() != byte_len {
                bail!("{} sent {} bytes during {during} where {byte_len} were expected", self.who(0), sum.len());
            }
            for (v, chunk) in values.iter_mut().zip(sum.chunks_exact(T::SIZE)) {
                *v = T::from_le(chunk);
            }
        }
        Ok(())
    }

    /// The gradients of `module`'s parameters summed over the peers (each peer gives its own
    /// `grads`, the sum of its micro-batches'), and `sums` (a step's loss and what its log line
    /// adds up) summed alike. A parameter has a gradient afterwards when it had one on any peer.
    /// `device` is the device of gradients (the module's device without autodiff).
    pub fn all_reduce_grads<M: Module>(
        &self,
        module: &M,
        grads: GradientsParams,
        sums: &mut [f64],
        device: &Device,
        step: usize,
    ) -> Result<GradientsParams> {
        let during = format!("step {}'s gradient exchange", step + 1);
        let mut flat = Flatten { grads: &grads, values: Vec::new(), present: Vec::new(), error: None };
        module.visit(&mut flat);
        if let Some(e) = flat.error {
            bail!("reading the gradients of step {}: {e}", step + 1);
        }
        let (mut values, present) = (flat.values, flat.present);
        // The presence flags travel with the f64 sums: one exchange for both.
        let mut small: Vec<f64> = sums.iter().copied().chain(present).collect();
        self.all_reduce_sum(&mut small, &during)?;
        self.all_reduce_sum(&mut values, &during)?;
        sums.copy_from_slice(&small[..sums.len()]);
        let present: Vec<bool> = small[sums.len()..].iter().map(|&p| p > 0.0).collect();
        let mut rebuild =
            Rebuild { values: &values, present: &present, offset: 0, index: 0, device, grads: GradientsParams::new() };
        module.visit(&mut rebuild);
        Ok(rebuild.grads)
    }
}

/// Peer 0: listens on `addr` and accepts the other `size − 1` peers (in any order), within
/// `timeout`; the links come back ordered by rank.
fn accept(size: usize, addr: &str, timeout: Duration) -> Result<Vec<TcpStream>> {
    let listener = TcpListener::bind(addr).with_context(|| {
        format!("peer 0 cannot listen on {addr} (--coordinator): is another run using that port? choose another")
    })?;
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let mut links: Vec<Option<TcpStream>> = (1..size).map(|_| None).collect();
    while links.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((stream, from)) => {
                stream.set_nonblocking(false)?;
                // A peer greets as soon as it connects; a silent stranger must not hold the door.
                stream.set_read_timeout(Some(timeout.min(GREETING)))?;
                stream.set_write_timeout(Some(timeout.min(GREETING)))?;
                match hello_from(&stream, size) {
                    Ok(rank) if links[rank - 1].is_none() => {
                        answer(&stream, "")?;
                        links[rank - 1] = Some(stream);
                    }
                    Ok(rank) => answer(&stream, &format!("another process already joined as peer {rank}"))?,
                    Err(e) => {
                        // A stray connection or a peer of another run: tell it why, keep waiting.
                        let _ = answer(&stream, &format!("{e:#}"));
                        eprintln!("peer 0: refused a connection from {from}: {e:#}");
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<String> = links
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.is_none())
                        .map(|(i, _)| (i + 1).to_string())
                        .collect();
                    bail!(
                        "peer(s) {} did not connect to {addr} within {} s (--peer-timeout): start them with \
                         --peers {size} --rank R --coordinator {addr}",
                        missing.join(", "),
                        timeout.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).with_context(|| format!("peer 0: accepting peers on {addr}")),
        }
    }
    Ok(links.into_iter().map(|l| l.expect("every peer joined")).collect())
}

/// A joining peer's greeting: the magic, its rank and the run's size; returns the rank.
fn hello_from(mut stream: &TcpStream, size: usize) -> Result<usize> {
    let mut hello = [0u8; 24];
    stream.read_exact(&mut hello).context("no greeting (not an adam peer?)")?;
    if &hello[..8] != MAGIC {
        bail!("not an adam peer (or another version of adam)");
    }
    let rank = u64::from_le_bytes(hello[8..16].try_into().unwrap()) as usize;
    let theirs = u64::from_le_bytes(hello[16..24].try_into().unwrap()) as usize;
    if theirs != size {
        bail!("peer {rank} was started with --peers {theirs}, peer 0 with --peers {size}");
    }
    if rank == 0 || rank >= size {
        bail!("a peer gave rank {rank}, which is not 1 to {}", size - 1);
    }
    Ok(rank)
}

fn answer(mut stream: &TcpStream, problem: &str) -> Result<()> {
    stream.write_all(&(problem.len() as u64).to_le_bytes())?;
    stream.write_all(problem.as_bytes())?;
    Ok(stream.flush()?)
}

/// Peer `rank` > 0: connects to peer 0, retrying until `timeout` (peer 0 may start later).
fn join(rank: usize, size: usize, addr: &str, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    let mut last_error = String::new();
    loop {
        let targets = addr.to_socket_addrs().with_context(|| format!("--coordinator {addr}: not a HOST:PORT"))?;
        for target in targets {
            match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
                Ok(mut stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    let mut hello = MAGIC.to_vec();
                    hello.extend((rank as u64).to_le_bytes());
                    hello.extend((size as u64).to_le_bytes());
                    stream.write_all(&hello)?;
                    let mut len = [0u8; 8];
                    stream.read_exact(&mut len).with_context(|| format!("peer {rank}: no answer from {addr}"))?;
                    let mut problem = vec![0u8; u64::from_le_bytes(len) as usize];
                    stream.read_exact(&mut problem)?;
                    if !problem.is_empty() {
                        bail!("peer 0 at {addr} refused peer {rank}: {}", String::from_utf8_lossy(&problem));
                    }
                    return Ok(stream);
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "peer {rank} could not reach peer 0 at {addr} within {} s (--peer-timeout): {last_error}; \
                 start peer 0 there (--rank 0), or check --coordinator",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the peers differ in, from peer 0's `values` and peer `rank`'s encoding of them.
fn describe_difference(rank: usize, values: &[(&str, u64)], theirs: &[u8]) -> String {
    for ((name, mine), chunk) in values.iter().zip(theirs.chunks(8)) {
        let other = chunk.try_into().map(u64::from_le_bytes).unwrap_or(u64::MAX);
        if other != *mine {
            return format!(
                "peer {rank} runs another training than peer 0 ({name}: {other} there, {mine} on peer 0): \
                 start every peer with the same config, data and flags"
            );
        }
    }
    format!("peer {rank} sent {} values where peer 0 has {}", theirs.len() / 8, values.len())
}

/// The numbers the peers exchange.
pub trait Element: Copy {
    const SIZE: usize;
    fn add(self, other: Self) -> Self;
    fn from_le(bytes: &[u8]) -> Self;
    fn put_le(self, out: &mut Vec<u8>);
}

/// The float types: their little-endian bytes on the wire.
macro_rules! float_element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn add(self, other: Self) -> Self {
                self + other
            }
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("SIZE bytes"))
            }
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
float_element!(f32, f64);

fn to_bytes<T: Element>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::SIZE);
    for &v in values {
        v.put_le(&mut out);
    }
    out
}

/// The module's parameters in visiting order: their gradients (zeros where absent) end to end,
/// and whether each had one.
struct Flatten<'a> {
    grads: &'a GradientsParams,
    values: Vec<f32>,
    present: Vec<f64>,
    error: Option<String>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match self.grads.get::<D>(param.id) {
            Some(g) => match g.into_data().convert::<f32>().try_to_vec::<f32>() {
                Ok(v) => {
                    self.values.extend(v);
                    self.present.push(1.0);
                }
                Err(e) => self.error = Some(format!("{e:?}")),
            },
            None => {
                self.values.extend(std::iter::repeat_n(0.0, param.val().shape().num_elements()));
                self.present.push(0.0);
            }
        }
    }
}

/// The inverse of [`Flatten`]: the summed gradients back into a [`GradientsParams`].
struct Rebuild<'a> {
    values: &'a [f32],
    present: &'a [bool],
    offset: usize,
    index: usize,
    device: &'a Device,
    grads: GradientsParams,
}

impl ModuleVisitor for Rebuild<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.val().shape();
        let n = shape.num_elements();
        if self.present[self.index] {
            let data = TensorData::new(self.values[self.offset..self.offset + n].to_vec(), shape);
            self.grads.register::<D>(param.id, Tensor::from_data(data, self.device));
        }
        self.offset += n;
        self.index += 1;
    }
}

/// The number of float parameters of `module` and their entries, which peers must agree on.
pub fn parameter_count<M: Module>(module: &M) -> (u64, u64) {
    struct Count(u64, u64);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 += 1;
            self.1 += param.val().shape().num_elements() as u64;
        }
    }
    let mut count = Count(0, 0);
    module.visit(&mut count);
    (count.0, count.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_port() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    }

    /// Runs `f` on `size` peers (threads here; processes in a real run) and returns their results.
    fn with_peers<T: Send + 'static>(
        size: usize,
        timeout: u64,
        f: impl Fn(Peers) -> Result<T> + Send + Sync + Clone + 'static,
    ) -> Vec<Result<T>> {
        let addr = free_port();
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let (f, addr) = (f.clone(), addr.clone());
                std::thread::spawn(move || f(Peers::connect(rank, size, &addr, Duration::from_secs(timeout))?))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn all_reduce_sums_in_rank_order_on_every_peer() {
        let results = with_peers(3, 10, |peers| {
            let r = peers.rank() as f32;
            let mut v = vec![r, 10.0 * r, 0.1];
            peers.all_reduce_sum(&mut v, "a test")?;
            let mut w = vec![r as f64 + 0.5];
            peers.all_reduce_sum(&mut w, "a test")?;
            Ok((v, w))
        });
        for r in results {
            let (v, w) = r.unwrap();
            assert_eq!(v, [3.0, 30.0, (0.1f32 + 0.1) + 0.1]);
            assert_eq!(w, [4.5]);
        }
    }

    #[test]
    fn peers_that_disagree_are_refused_with_the_key() {
        let results = with_peers(2, 10, |peers| {
            let steps = if peers.rank() == 0 { 10 } else { 12 };
            peers.agree(&[("seed", 7), ("steps", steps)])
        });
        for r in results {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("steps: 12 there, 10 on peer 0"), "{e}");
        }
    }

    #[test]
    fn a_peer_that_stops_makes_the_others_fail_instead_of_waiting() {
        let results = with_peers(3, 10, |peers| {
            if peers.rank() == 2 {
                return Ok(()); // gone before the exchange: its links close
            }
            let mut v = vec![1.0f32];
            peers.all_reduce_sum(&mut v, "step 3's gradient exchange")
        });
        let e = results[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("lost peer 2 during step 3's gradient exchange"), "{e}");
        let e = results[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("peer 0 (the coordinator"), "{e}");
    }

    #[test]
    fn a_missing_peer_is_named_after_the_timeout() {
        let addr = free_port();
        let start = Instant::now();
        let err = Peers::connect(0, 3, &addr, Duration::from_secs(1)).err().unwrap().to_string();
        assert!(err.contains("peer(s) 1, 2 did not connect") && err.contains("--peer-timeout"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let err = Peers::connect(1, 2, &free_port(), Duration::from_secs(1)).err().unwrap().to_string();
        assert!(err.contains("peer 1 could not reach peer 0"), "{err}");
    }

    #[test]
    fn a_stray_connection_does_not_take_a_peers_place() {
        let results = with_peers(2, 10, |peers| {
            let mut v = vec![peers.rank() as f64];
            peers.all_reduce_sum(&mut v, "a test")?;
            Ok(v[0])
        });
        assert!(results.into_iter().all(|r| r.unwrap() == 1.0));
        // A process that is not a peer gets an answer and is turned away.
        let addr = free_port();
        let coordinator = {
            let addr = addr.clone();
            std::thread::spawn(move || Peers::connect(0, 2, &addr, Duration::from_secs(5)).map(|p| p.size()))
        };
        std::thread::sleep(Duration::from_millis(200));
        let mut stray = TcpStream::connect(&addr).unwrap();
        stray.write_all(b"GET / HTTP/1.1\r\n\r\n\0\0\0\0\0\0").unwrap();
        let mut answer = String::new();
        let _ = stray.read_to_string(&mut answer);
        assert!(answer.contains("not an adam peer"), "{answer:?}");
        let joined = Peers::connect(1, 2, &addr, Duration::from_secs(5)).unwrap();
        assert_eq!((joined.rank(), coordinator.join().unwrap().unwrap()), (1, 2));
    }
}
