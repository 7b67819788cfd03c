//! The RevOps console (issue 24): what a review resolution and a human override mean, the
//! keyset cursor of the leads list, console sessions, and the server-rendered pages
//! (minijinja templates and CSS embedded in the binary; charts drawn as SVG on the server,
//! so the pages need no script and work offline).

pub mod charts;
pub mod cursor;
pub mod overrides;
pub mod pages;
pub mod review;
pub mod session;
