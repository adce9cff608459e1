//! [`ServeFile`]: serves one file for every request.

use std::convert::Infallible;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use spargio_rt::fs::{File, Metadata, ResolveFlags};

use super::body::FileBody;
use super::encoding::Encoding;
use super::mime::content_type_for;
use super::open::{self, Found, Location};
use super::respond::{self, Opened, ResponseFuture, ServeOptions};

/// A tower service that answers every `GET` and `HEAD` request with one
/// file, whatever the request path.
///
/// Same responses as [`ServeDir`](super::ServeDir) (validators,
/// conditional and range requests, `405` for other methods); the path is
/// the one given, opened afresh per request (symlinks followed), so
/// replacing the file is picked up. A missing file, or one that is not a
/// regular file, is `404`; as with `ServeDir`, anything else (a FIFO, a
/// device) is looked at through an `O_PATH` handle and never opened.
///
/// ```no_run
/// use http::Request;
/// use spargio_http::fs::ServeFile;
/// use tower_service::Service;
///
/// spargio_rt::run(|_| async {
///     let mut favicon = ServeFile::new("static/favicon.ico");
///     let res = favicon.call(Request::get("/favicon.ico").body(()).unwrap()).await.unwrap();
///     assert_eq!(res.headers()["content-type"], "image/x-icon");
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct ServeFile {
    config: Arc<FileConfig>,
}

#[derive(Debug, Clone)]
struct FileConfig {
    path: PathBuf,
    content_type: HeaderValue,
    options: ServeOptions,
}

impl ServeFile {
    /// Serves the file at `path`, with a `Content-Type` guessed from its
    /// extension.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_owned();
        ServeFile {
            config: Arc::new(FileConfig {
                content_type: content_type_for(&path),
                path,
                options: ServeOptions::default(),
            }),
        }
    }

    /// Sends this `Content-Type` instead of the guessed one.
    ///
    /// ```
    /// # use spargio_http::fs::ServeFile;
    /// use http::HeaderValue;
    /// let manifest = ServeFile::new("site.webmanifest")
    ///     .with_content_type(HeaderValue::from_static("application/manifest+json"));
    /// ```
    pub fn with_content_type(mut self, content_type: HeaderValue) -> Self {
        Arc::make_mut(&mut self.config).content_type = content_type;
        self
    }

    /// Serves `<path>.gz`, with `Content-Encoding: gzip`, when the client
    /// accepts gzip and that file exists; as
    /// [`ServeDir::precompressed_gzip`](super::ServeDir::precompressed_gzip)
    /// (which also says how several codings are chosen between).
    pub fn precompressed_gzip(self) -> Self {
        self.precompressed(Encoding::Gzip)
    }

    /// Serves `<path>.br` (`Content-Encoding: br`); as
    /// [`ServeDir::precompressed_br`](super::ServeDir::precompressed_br).
    pub fn precompressed_br(self) -> Self {
        self.precompressed(Encoding::Br)
    }

    /// Serves `<path>.zst` (`Content-Encoding: zstd`); as
    /// [`ServeDir::precompressed_zstd`](super::ServeDir::precompressed_zstd).
    pub fn precompressed_zstd(self) -> Self {
        self.precompressed(Encoding::Zstd)
    }

    /// Serves `<path>.zz` (`Content-Encoding: deflate`); as
    /// [`ServeDir::precompressed_deflate`](super::ServeDir::precompressed_deflate).
    pub fn precompressed_deflate(self) -> Self {
        self.precompressed(Encoding::Deflate)
    }

    fn precompressed(mut self, encoding: Encoding) -> Self {
        Arc::make_mut(&mut self.config)
            .options
            .precompress(encoding);
        self
    }

    /// How many bytes each read of a response body asks for (default
    /// [`DEFAULT_CHUNK_SIZE`](super::DEFAULT_CHUNK_SIZE), 64 KiB).
    pub fn with_buf_chunk_size(mut self, chunk_size: usize) -> Self {
        Arc::make_mut(&mut self.config).options.chunk_size = chunk_size.max(1);
        self
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.config.path
    }
}

impl<B: Send + 'static> tower_service::Service<Request<B>> for ServeFile {
    type Response = Response<FileBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let (parts, _body) = req.into_parts();
        let config = Arc::clone(&self.config);
        ResponseFuture::new(async move {
            let vary = !config.options.precompressed.is_empty();
            let mut res = serve(config, parts).await;
            if vary {
                respond::vary_on_accept_encoding(&mut res);
            }
            res
        })
    }
}

async fn serve(config: Arc<FileConfig>, parts: Parts) -> Response<FileBody> {
    if !respond::method_allowed(&parts.method) {
        return respond::method_not_allowed();
    }
    let (file, meta) = match open_file(&config.path).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return respond::empty(StatusCode::NOT_FOUND),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // Only a precompressed sibling may be there: served to a
            // client that takes its encoding, as `ServeDir` does.
            for encoding in config.options.precompressed.accepted_by(&parts) {
                if let Ok(Some((file, meta))) = open_file(&encoding.sibling(&config.path)).await {
                    let opened = Opened {
                        file,
                        meta,
                        content_type: config.content_type.clone(),
                        encoding: Some(encoding),
                    };
                    return respond::respond(&parts, opened, &config.options);
                }
            }
            return respond::io_error(&e);
        }
        Err(e) => return respond::io_error(&e),
    };
    let mut opened = Opened {
        file,
        meta,
        content_type: config.content_type.clone(),
        encoding: None,
    };
    for encoding in config.options.precompressed.accepted_by(&parts) {
        if let Ok(Some((file, meta))) = open_file(&encoding.sibling(&config.path)).await {
            opened.file = file;
            opened.meta = meta;
            opened.encoding = Some(encoding);
            break;
        }
    }
    respond::respond(&parts, opened, &config.options)
}

/// Opens `path` (from the current directory, symlinks followed) if it is
/// a regular file; `None` if it is something else.
async fn open_file(path: &Path) -> io::Result<Option<(File, Metadata)>> {
    let at = Location {
        dir: None,
        path,
        resolve: ResolveFlags::empty(),
    };
    Ok(match open::open(at).await? {
        Found::File(file, meta) => Some((file, meta)),
        Found::Dir | Found::Other => None,
    })
}
