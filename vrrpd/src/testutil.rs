//! Test helpers shared by the unit tests that need a network namespace of their own.

use std::future::Future;

use futures::TryStreamExt;

/// Runs `f` on a fresh thread that moved into a private network namespace (only that thread
/// does), with a veth pair `a`/`b` in it and an rtnetlink handle. The namespace disappears
/// with the thread. Panics in `f` fail the calling test.
pub(crate) fn in_netns_with_veth<F, Fut>(a: &'static str, b: &'static str, f: F)
where
    F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection().expect("rtnetlink");
            tokio::spawn(conn);
            handle
                .link()
                .add(rtnetlink::LinkVeth::new(a, b).build())
                .execute()
                .await
                .expect("veth");
            f(handle).await;
        });
    })
    .join()
    .expect("netns thread");
}

/// The index of interface `name`.
pub(crate) async fn link_index(h: &rtnetlink::Handle, name: &str) -> u32 {
    h.link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
        .expect("link query")
        .expect("link exists")
        .header
        .index
}
