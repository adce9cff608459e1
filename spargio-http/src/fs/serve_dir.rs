//! [`ServeDir`]: serves the files under a directory.

use std::convert::Infallible;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{header, Request, Response, StatusCode};
use spargio_rt::fs::{File, Metadata};
use spargio_service::BoxError;

use super::body::FileBody;
use super::confine::open_under;
use super::encoding::Encoding;
use super::listing;
use super::mime::content_type_for;
use super::open::Found;
use super::path::{self, RequestPath};
use super::respond::{self, Opened, ResponseFuture, ServeOptions};
use super::root::{ResolvedRoot, Root};

/// A tower service that serves the files under a root directory, for
/// `GET` and `HEAD` requests.
///
/// The request path (its query is ignored) is percent-decoded and joined
/// onto the root. A path ending in `/` names a directory and serves its
/// `index.html` (see
/// [`append_index_html_on_directories`](Self::append_index_html_on_directories));
/// a directory asked for without the slash is redirected to it. Responses
/// carry `Content-Type` (from the extension), `Content-Length`,
/// `Accept-Ranges`, `ETag` and `Last-Modified`, and honour conditional and
/// range requests; see the [module docs](super) for the status codes.
///
/// Path safety: a request whose decoded path has a `.` or `..` segment,
/// or a segment holding `/` (`%2f`), `\` (`%5c`) or NUL, gets `404`
/// before the filesystem is touched. The path is then opened by the
/// kernel relative to a handle on the canonical root with `openat2`'s
/// `RESOLVE_BENEATH`: a symlink inside the root that points inside it is
/// followed, one that leads outside is refused as if the file did not
/// exist (`404`). Since the kernel checks while it resolves, swapping a
/// directory for a symlink mid-request cannot get a path out either.
/// Absolute symlinks, which `RESOLVE_BENEATH` refuses even when they point
/// back inside, are resolved with `canonicalize` (on the blocking pool),
/// checked against the root, and opened again with no symlink allowed.
/// The root itself is resolved and opened at most once a second (so
/// re-pointing a symlinked root, a deploy, is picked up without a
/// restart).
///
/// Only regular files and directories are opened: what the path names is
/// looked at through an `O_PATH` handle first, so a FIFO or a device under
/// the root is answered `404` without being opened (opening a FIFO would
/// release a writer waiting for a reader; opening a device can have side
/// effects).
///
/// ```no_run
/// use http::Request;
/// use http_body_util::BodyExt;
/// use spargio_http::fs::ServeDir;
/// use tower_service::Service;
///
/// spargio_rt::run(|_| async {
///     let mut assets = ServeDir::new("public").precompressed_gzip();
///     let req = Request::get("/css/site.css").body(()).unwrap();
///     let res = assets.call(req).await.unwrap();
///     println!("{} {:?}", res.status(), res.headers());
///     let bytes = res.into_body().collect().await?.to_bytes();
///     println!("{} bytes", bytes.len());
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
///
/// A request this service would answer `404` (no such file, a directory
/// with nothing to serve, a path it refuses) can go to another service
/// instead: [`fallback`](Self::fallback) or
/// [`not_found_service`](Self::not_found_service), as in tower-http (a
/// single-page app's `index.html` for every route, say).
#[derive(Clone)]
pub struct ServeDir<F = DefaultFallback> {
    config: Arc<DirConfig>,
    fallback: Option<Fallback<F>>,
}

/// The service a [`ServeDir`] sends its would-be `404`s to.
#[derive(Clone)]
struct Fallback<F> {
    service: F,
    /// The fallback's answer goes out as `404 Not Found` whatever its
    /// status ([`ServeDir::not_found_service`]).
    status_404: bool,
}

/// The fallback type of a [`ServeDir`] without one: it answers `404 Not
/// Found` with an empty body (the `ServeDir` does so itself and never
/// calls it).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultFallback;

impl<B> tower_service::Service<Request<B>> for DefaultFallback {
    type Response = Response<FileBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<FileBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        std::future::ready(Ok(respond::empty(StatusCode::NOT_FOUND)))
    }
}

impl<F> fmt::Debug for ServeDir<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeDir")
            .field("config", &self.config)
            .field(
                "fallback",
                &self.fallback.as_ref().map(|fb| {
                    if fb.status_404 {
                        "not found service"
                    } else {
                        "fallback"
                    }
                }),
            )
            .finish()
    }
}

#[derive(Debug, Clone)]
struct DirConfig {
    root: PathBuf,
    /// The root with symlinks resolved, and a handle on it, looked up
    /// again every second: a symlinked root re-pointed at another
    /// directory (a deploy) is served from there a moment later.
    canonical_root: Arc<ResolvedRoot>,
    append_index_html: bool,
    list_directories: bool,
    /// Whether paths with a segment starting with `.` are served.
    serve_hidden: bool,
    /// Whether requests with another method than GET or HEAD go to the
    /// fallback instead of being answered `405`.
    fallback_on_method_not_allowed: bool,
    options: ServeOptions,
}

impl ServeDir {
    /// Serves the files under `root` (relative roots are taken from the
    /// current directory when the first request arrives).
    pub fn new(root: impl AsRef<Path>) -> Self {
        ServeDir {
            config: Arc::new(DirConfig {
                root: root.as_ref().to_owned(),
                canonical_root: Arc::default(),
                append_index_html: true,
                list_directories: false,
                serve_hidden: true,
                fallback_on_method_not_allowed: false,
                options: ServeOptions::default(),
            }),
            fallback: None,
        }
    }
}

impl<F> ServeDir<F> {
    /// Sends every request this service would answer `404 Not Found` to
    /// `service` instead, whose response goes out as it is (its status
    /// included): a path with no file, a directory with no index to serve
    /// and no listing, and the paths refused as unsafe (`..`, hidden ones
    /// with [`serve_hidden`](Self::serve_hidden) off), which the fallback
    /// then answers as it sees fit. The fallback gets the whole request,
    /// body included. Other answers (`405` to a method other than GET and
    /// HEAD, `403`, `304`, `416`, redirects) are not the fallback's.
    ///
    /// ```no_run
    /// use spargio_http::fs::{ServeDir, ServeFile};
    /// // A single-page app: files from `dist`, `index.html` for any other path.
    /// let app = ServeDir::new("dist").fallback(ServeFile::new("dist/index.html"));
    /// # drop(app);
    /// ```
    pub fn fallback<F2>(self, service: F2) -> ServeDir<F2> {
        ServeDir {
            config: self.config,
            fallback: Some(Fallback {
                service,
                status_404: false,
            }),
        }
    }

    /// As [`fallback`](Self::fallback), but the response goes out as `404
    /// Not Found` whatever status `service` gave it: a custom not-found
    /// page.
    ///
    /// ```no_run
    /// use spargio_http::fs::{ServeDir, ServeFile};
    /// let site = ServeDir::new("public").not_found_service(ServeFile::new("public/404.html"));
    /// # drop(site);
    /// ```
    pub fn not_found_service<F2>(self, service: F2) -> ServeDir<F2> {
        ServeDir {
            config: self.config,
            fallback: Some(Fallback {
                service,
                status_404: true,
            }),
        }
    }

    /// Whether a path ending in `/` serves the directory's `index.html`
    /// (default `true`). With `true`, a directory asked for without the
    /// trailing slash (`/docs`) is answered `308 Permanent Redirect` with
    /// the relative `Location: ./docs/` (query kept), which resolves
    /// correctly even when the service is mounted under a prefix. With
    /// `false`, directories are `404`.
    pub fn append_index_html_on_directories(mut self, append: bool) -> Self {
        Arc::make_mut(&mut self.config).append_index_html = append;
        self
    }

    /// Whether a directory with no `index.html` to serve (none there, or
    /// [`append_index_html_on_directories`](Self::append_index_html_on_directories)
    /// off) is answered with an HTML page linking its entries (default
    /// `false`: `404`). Hidden entries (names starting with `.`) are left
    /// out, directories come first, and at most 10,000 entries are listed
    /// (the page says how many more there are). The names are read on the
    /// blocking pool from the directory opened under the root as safely
    /// as a file is. A listing has no validators and carries
    /// `Cache-Control: no-cache`. With listings on, a directory asked for
    /// without the trailing slash is redirected to it, as for an index.
    ///
    /// ```no_run
    /// use spargio_http::fs::ServeDir;
    /// // `/` lists the files under `downloads` (no index.html there).
    /// let files = ServeDir::new("downloads").list_directories(true);
    /// # drop(files);
    /// ```
    pub fn list_directories(mut self, list: bool) -> Self {
        Arc::make_mut(&mut self.config).list_directories = list;
        self
    }

    /// Whether a request whose method is neither `GET` nor `HEAD` goes to
    /// the [`fallback`](Self::fallback) (or the
    /// [`not_found_service`](Self::not_found_service)) instead of being
    /// answered `405 Method Not Allowed` (default `false`, as tower-http's
    /// option of the same name): files first, and an API behind them that
    /// takes its `POST`s.
    ///
    /// ```no_run
    /// use spargio_http::fs::ServeDir;
    /// # let api = spargio_http::fs::ServeFile::new("api.json");
    /// let app = ServeDir::new("public")
    ///     .call_fallback_on_method_not_allowed(true)
    ///     .fallback(api);
    /// # drop(app);
    /// ```
    pub fn call_fallback_on_method_not_allowed(mut self, call: bool) -> Self {
        Arc::make_mut(&mut self.config).fallback_on_method_not_allowed = call;
        self
    }

    /// Whether a path with any segment starting with `.` (`/.env`,
    /// `/.git/config`, `/app/.secret/key`) is served (default `true`, as
    /// tower-http does). With `false` such requests are answered `404`
    /// without touching the file system: a root that is a checkout or a
    /// build directory may hold dotfiles that were never meant to be
    /// public. That refuses `/.well-known/` too; serve it from its own
    /// `ServeDir` if you need it.
    ///
    /// ```no_run
    /// use spargio_http::fs::ServeDir;
    /// let site = ServeDir::new("site").serve_hidden(false);
    /// # drop(site);
    /// ```
    pub fn serve_hidden(mut self, serve: bool) -> Self {
        Arc::make_mut(&mut self.config).serve_hidden = serve;
        self
    }

    /// Serves `<file>.gz` instead of `<file>`, with `Content-Encoding:
    /// gzip`, when the client accepts gzip and that file exists as a
    /// regular file (opened as safely as any other). `<file>` is the path
    /// asked for (`index.html` under it for a directory), as in
    /// tower-http: a symlink `alias.txt -> hello.txt` has the twin
    /// `alias.txt.gz`, not `hello.txt.gz`. `Content-Type` stays the
    /// original file's, and every response (a `404`, a redirect and a
    /// fallback's answer too) gets `Vary: accept-encoding`.
    /// Ranges and validators then apply to the compressed file.
    ///
    /// With several precompressed codings on, the client's
    /// `Accept-Encoding` picks: the accepted ones are tried by quality,
    /// ties in the order br, zstd, gzip, deflate, and the first whose
    /// sibling exists is served (else the file itself). A sibling whose
    /// original is missing (`app.js.gz` alone) is served too, to clients
    /// that take its encoding (others get `404`).
    ///
    /// ```no_run
    /// use spargio_http::fs::ServeDir;
    /// // `app.js.br`, `app.js.gz` or `app.js`, as the client accepts.
    /// let assets = ServeDir::new("dist").precompressed_br().precompressed_gzip();
    /// # drop(assets);
    /// ```
    pub fn precompressed_gzip(self) -> Self {
        self.precompressed(Encoding::Gzip)
    }

    /// Serves `<file>.br` with `Content-Encoding: br` to clients that
    /// accept Brotli; as [`precompressed_gzip`](Self::precompressed_gzip).
    pub fn precompressed_br(self) -> Self {
        self.precompressed(Encoding::Br)
    }

    /// Serves `<file>.zst` with `Content-Encoding: zstd` to clients that
    /// accept Zstandard; as [`precompressed_gzip`](Self::precompressed_gzip).
    pub fn precompressed_zstd(self) -> Self {
        self.precompressed(Encoding::Zstd)
    }

    /// Serves `<file>.zz` with `Content-Encoding: deflate` (a zlib stream,
    /// tower-http's name for it) to clients that accept deflate; as
    /// [`precompressed_gzip`](Self::precompressed_gzip).
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

    /// The root directory, as given.
    pub fn root(&self) -> &Path {
        &self.config.root
    }
}

/// The fallback's response body is carried as a [`FileBody`]
/// ([`FileBody::from_body`]); the fallback is cloned for each request it
/// takes (and made ready first), as tower services are.
impl<B, F, FB> tower_service::Service<Request<B>> for ServeDir<F>
where
    B: Send + 'static,
    F: tower_service::Service<Request<B>, Response = Response<FB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    F::Future: Send + 'static,
    FB: http_body::Body<Data = Bytes> + Send + 'static,
    FB::Error: Into<BoxError>,
{
    type Response = Response<FileBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let (parts, body) = req.into_parts();
        let config = Arc::clone(&self.config);
        let vary = !config.options.precompressed.is_empty();
        let Some(fallback) = self.fallback.clone() else {
            return ResponseFuture::new(async move {
                let mut res = serve(config, &parts).await;
                if vary {
                    respond::vary_on_accept_encoding(&mut res);
                }
                res
            });
        };
        ResponseFuture::new(async move {
            let on_405 = config.fallback_on_method_not_allowed;
            let mut res = serve(config, &parts).await;
            let fall_back = match res.status() {
                StatusCode::NOT_FOUND => true,
                StatusCode::METHOD_NOT_ALLOWED => on_405,
                _ => false,
            };
            if !fall_back {
                if vary {
                    respond::vary_on_accept_encoding(&mut res);
                }
                return res;
            }
            let Fallback {
                mut service,
                status_404,
            } = fallback;
            let mut parts = parts;
            if status_404 {
                // Conditions and ranges are for the resource asked for,
                // and apply only to a 2xx (RFC 9110 §13.2.1, §14.2): the
                // not-found page must not come back as an empty 304 or a
                // slice of itself.
                for name in PRECONDITIONS_AND_RANGES {
                    parts.headers.remove(name);
                }
            }
            let Ok(()) = poll_fn(|cx| service.poll_ready(cx)).await;
            let Ok(res) = service.call(Request::from_parts(parts, body)).await;
            let (mut head, body) = res.into_parts();
            if status_404 {
                head.status = StatusCode::NOT_FOUND;
                // The page's own validators would invite conditional
                // requests that the 404 never honours.
                for name in VALIDATORS {
                    head.headers.remove(name);
                }
            }
            let mut res = Response::from_parts(head, FileBody::from_body(body));
            if vary {
                // Whether the fallback was asked at all turned on the
                // client's `Accept-Encoding` too.
                respond::vary_on_accept_encoding(&mut res);
            }
            res
        })
    }
}

/// Request fields that make a response conditional or partial, taken off
/// a request before a [`ServeDir::not_found_service`] answers it.
const PRECONDITIONS_AND_RANGES: [header::HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// Response fields about the file served, taken off a not-found page.
const VALIDATORS: [header::HeaderName; 4] = [
    header::ETAG,
    header::LAST_MODIFIED,
    header::ACCEPT_RANGES,
    header::CONTENT_RANGE,
];

async fn serve(config: Arc<DirConfig>, parts: &Parts) -> Response<FileBody> {
    if !respond::method_allowed(&parts.method) {
        return respond::method_not_allowed();
    }
    let Some(request_path) = path::decode(parts.uri.path()) else {
        return respond::empty(StatusCode::NOT_FOUND);
    };
    if !config.serve_hidden && request_path.is_hidden() {
        return respond::empty(StatusCode::NOT_FOUND);
    }
    let root = match canonical_root(&config).await {
        Ok(root) => root,
        Err(e) => return respond::io_error(&e),
    };
    // `served` is the path asked for (with `index.html` for a directory):
    // it picks the Content-Type (a symlink `latest` -> `v2.css` is typed
    // by `latest`) and names the `.gz` twin.
    let (file, meta, served) = match open_under(&root, &request_path.relative).await {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !request_path.trailing_slash => {
            // Only a precompressed sibling may be there (`app.js.gz`
            // deployed alone): served to a client that takes its encoding,
            // as tower-http does.
            return match serve_sibling_alone(&root, &request_path.relative, parts, &config).await {
                Some(res) => res,
                None => respond::io_error(&e),
            };
        }
        Err(e) => return respond::io_error(&e),
        Ok(Found::Other) => return respond::empty(StatusCode::NOT_FOUND),
        Ok(Found::File(file, meta)) => {
            if request_path.trailing_slash {
                // `/file.txt/`: not a directory.
                return respond::empty(StatusCode::NOT_FOUND);
            }
            (file, meta, request_path.relative)
        }
        Ok(Found::Dir) => {
            if !config.append_index_html && !config.list_directories {
                return respond::empty(StatusCode::NOT_FOUND);
            }
            if !request_path.trailing_slash {
                return redirect_to_dir(&request_path, parts);
            }
            let index = request_path.relative.join(INDEX);
            let found = if config.append_index_html {
                open_under(&root, &index).await
            } else {
                Ok(Found::Other)
            };
            match found {
                Ok(Found::File(file, meta)) => (file, meta, index),
                Ok(Found::Dir | Found::Other) if !config.list_directories => {
                    return respond::empty(StatusCode::NOT_FOUND)
                }
                // `index.html.gz` deployed alone, as for any other file.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(res) = serve_sibling_alone(&root, &index, parts, &config).await {
                        return res;
                    }
                    if !config.list_directories {
                        return respond::io_error(&e);
                    }
                    let shown = listing::shown_path(parts.uri.path());
                    return listing::list(&root, &request_path.relative, &shown, parts).await;
                }
                Err(e) => return respond::io_error(&e),
                // No index to serve: the listing.
                Ok(_) => {
                    let shown = listing::shown_path(parts.uri.path());
                    return listing::list(&root, &request_path.relative, &shown, parts).await;
                }
            }
        }
    };

    let mut opened = Opened {
        file,
        meta,
        content_type: content_type_for(&served),
        encoding: None,
    };
    for encoding in config.options.precompressed.accepted_by(parts) {
        if let Some((file, meta)) = open_sibling(&root, &served, encoding).await {
            opened.file = file;
            opened.meta = meta;
            opened.encoding = Some(encoding);
            break;
        }
    }
    respond::respond(parts, opened, &config.options)
}

/// The file a directory request serves.
const INDEX: &str = "index.html";

/// The canonical root and its handle (see [`ResolvedRoot`]).
async fn canonical_root(config: &DirConfig) -> io::Result<Arc<Root>> {
    config.canonical_root.get(&config.root).await
}

/// The sibling of `served` (relative to the root) in `encoding`, if it
/// is a regular file under the root.
/// The response for a precompressed sibling of `served` (`app.js.gz`)
/// deployed without `served` itself, if the client takes one of the
/// configured encodings and such a sibling is there; as tower-http does.
async fn serve_sibling_alone(
    root: &Root,
    served: &Path,
    parts: &Parts,
    config: &DirConfig,
) -> Option<Response<FileBody>> {
    for encoding in config.options.precompressed.accepted_by(parts) {
        if let Some((file, meta)) = open_sibling(root, served, encoding).await {
            let opened = Opened {
                file,
                meta,
                content_type: content_type_for(served),
                encoding: Some(encoding),
            };
            return Some(respond::respond(parts, opened, &config.options));
        }
    }
    None
}

async fn open_sibling(root: &Root, served: &Path, encoding: Encoding) -> Option<(File, Metadata)> {
    match open_under(root, &encoding.sibling(served)).await {
        Ok(Found::File(file, meta)) => Some((file, meta)),
        _ => None,
    }
}

/// `308` to the same path with a trailing slash, as a relative reference
/// (`./name/`) so it also works under a path prefix.
fn redirect_to_dir(request_path: &RequestPath, parts: &Parts) -> Response<FileBody> {
    let Some(last) = &request_path.last_raw_segment else {
        // Only `/` has no segment, and it ends in a slash.
        return respond::empty(StatusCode::NOT_FOUND);
    };
    let mut location = format!("./{last}/");
    if let Some(query) = parts.uri.query() {
        location.push('?');
        location.push_str(query);
    }
    respond::redirect(&location)
}
