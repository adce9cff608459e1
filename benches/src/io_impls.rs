//! [`NetStream`], [`PosFile`] and [`StreamSpawner`] for each runtime under
//! test: spargio-rt, tokio, compio and spargio 0.5.13.

use crate::exec::Exec;
use crate::io_workloads::{run_job, NetStream, PosFile, StreamJob, StreamSpawner};
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

// ---- spargio-rt: owned-buffer ops on its rings -----------------------------

impl NetStream for spargio_rt::net::TcpStream {
    async fn send_all(&mut self, buf: Vec<u8>) -> Vec<u8> {
        let (res, buf) = spargio_rt::io::AsyncWriteExt::write_all(self, buf).await;
        res.expect("spargio-rt write_all");
        buf
    }

    async fn recv_exact(&mut self, buf: Vec<u8>) -> Vec<u8> {
        let (res, buf) = spargio_rt::io::AsyncReadExt::read_exact(self, buf).await;
        res.expect("spargio-rt read_exact");
        buf
    }
}

impl PosFile for spargio_rt::fs::File {
    async fn pread(&self, buf: Vec<u8>, pos: u64) -> Vec<u8> {
        let (res, buf) = self.read_at(buf, pos).await;
        let n = res.expect("spargio-rt read_at");
        assert_eq!(n, buf.len(), "spargio-rt short read");
        buf
    }
}

// ---- tokio: epoll streams; files through spawn_blocking + pread -----------

impl NetStream for tokio::net::TcpStream {
    async fn send_all(&mut self, buf: Vec<u8>) -> Vec<u8> {
        tokio::io::AsyncWriteExt::write_all(self, &buf)
            .await
            .expect("tokio write_all");
        buf
    }

    async fn recv_exact(&mut self, mut buf: Vec<u8>) -> Vec<u8> {
        tokio::io::AsyncReadExt::read_exact(self, &mut buf)
            .await
            .expect("tokio read_exact");
        buf
    }
}

/// tokio's file peer: `spawn_blocking` + `pread` (`FileExt::read_exact_at`),
/// which is what `tokio::fs` does inside, without its seek + read pair.
pub struct TokioFile(pub Arc<std::fs::File>);

impl PosFile for TokioFile {
    async fn pread(&self, mut buf: Vec<u8>, pos: u64) -> Vec<u8> {
        let file = self.0.clone();
        tokio::task::spawn_blocking(move || {
            file.read_exact_at(&mut buf, pos).expect("tokio pread");
            buf
        })
        .await
        .expect("tokio spawn_blocking join")
    }
}

// ---- compio: single-thread io_uring runtime --------------------------------

impl NetStream for compio::net::TcpStream {
    async fn send_all(&mut self, buf: Vec<u8>) -> Vec<u8> {
        let ((), buf) = compio::io::AsyncWriteExt::write_all(self, buf)
            .await
            .expect("compio write_all");
        buf
    }

    async fn recv_exact(&mut self, buf: Vec<u8>) -> Vec<u8> {
        let ((), buf) = compio::io::AsyncReadExt::read_exact(self, buf)
            .await
            .expect("compio read_exact");
        buf
    }
}

impl PosFile for compio::fs::File {
    async fn pread(&self, buf: Vec<u8>, pos: u64) -> Vec<u8> {
        let ((), buf) = compio::io::AsyncReadAtExt::read_exact_at(self, buf, pos)
            .await
            .expect("compio read_exact_at");
        buf
    }
}

/// compio's tasks are `!Send` and run on its one thread: `compio::runtime::spawn`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompioSpawner;

impl StreamSpawner<compio::net::TcpStream> for CompioSpawner {
    fn run_all(
        &self,
        jobs: Vec<(compio::net::TcpStream, StreamJob)>,
    ) -> impl Future<Output = Vec<(compio::net::TcpStream, u64)>> {
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(mut stream, job)| {
                compio::runtime::spawn(async move {
                    let value = run_job(&mut stream, job).await;
                    (stream, value)
                })
            })
            .collect();
        async move {
            let mut out = Vec::with_capacity(tasks.len());
            for task in tasks {
                out.push(task.await.expect("compio stream task"));
            }
            out
        }
    }
}

// ---- spargio 0.5.13: its uring-native net and fs ---------------------------

impl NetStream for spargio::net::TcpStream {
    async fn send_all(&mut self, buf: Vec<u8>) -> Vec<u8> {
        self.write_all_owned(buf)
            .await
            .expect("spargio 0.5.13 write_all_owned")
    }

    async fn recv_exact(&mut self, buf: Vec<u8>) -> Vec<u8> {
        self.read_exact_owned(buf)
            .await
            .expect("spargio 0.5.13 read_exact_owned")
    }
}

impl PosFile for spargio::fs::File {
    async fn pread(&self, buf: Vec<u8>, pos: u64) -> Vec<u8> {
        let (n, buf) = self
            .read_at_into(pos, buf)
            .await
            .expect("spargio 0.5.13 read_at_into");
        assert_eq!(n, buf.len(), "spargio 0.5.13 short read");
        buf
    }
}

// ---- the work-stealing runtimes spawn through `Exec` (stealable) -----------

/// One stealable task per stream through [`Exec::spawn`], joined in order.
macro_rules! exec_spawner {
    ($exec:ty, $stream:ty) => {
        impl StreamSpawner<$stream> for $exec {
            fn run_all(
                &self,
                jobs: Vec<($stream, StreamJob)>,
            ) -> impl Future<Output = Vec<($stream, u64)>> {
                let joins: Vec<_> = jobs
                    .into_iter()
                    .map(|(mut stream, job)| {
                        Exec::spawn(self, async move {
                            let value = run_job(&mut stream, job).await;
                            (stream, value)
                        })
                    })
                    .collect();
                async move {
                    let mut out = Vec::with_capacity(joins.len());
                    for join in joins {
                        out.push(join.await.expect("join stream task"));
                    }
                    out
                }
            }
        }
    };
}

/// spargio-rt's stream tasks: stealable by default (as tokio's `spawn`),
/// or pinned round-robin over the shards (each connection on its session
/// shard, the spargio-service model) with `SPARGIO_BENCH_STREAMS=pinned`.
impl StreamSpawner<spargio_rt::net::TcpStream> for spargio_rt::RuntimeHandle {
    fn run_all(
        &self,
        jobs: Vec<(spargio_rt::net::TcpStream, StreamJob)>,
    ) -> impl Future<Output = Vec<(spargio_rt::net::TcpStream, u64)>> {
        let placement = match std::env::var("SPARGIO_BENCH_STREAMS").as_deref() {
            Ok("pinned") => spargio_rt::TaskPlacement::RoundRobin,
            _ => spargio_rt::TaskPlacement::Stealable,
        };
        let joins: Vec<_> = jobs
            .into_iter()
            .map(|(mut stream, job)| {
                self.spawn_with_placement(placement, async move {
                    let value = run_job(&mut stream, job).await;
                    (stream, value)
                })
            })
            .collect();
        async move {
            let mut out = Vec::with_capacity(joins.len());
            for join in joins {
                out.push(join.await.expect("join stream task"));
            }
            out
        }
    }
}
exec_spawner!(tokio::runtime::Handle, tokio::net::TcpStream);
exec_spawner!(spargio::RuntimeHandle, spargio::net::TcpStream);
