//! Who a script runs as when its line names no user: one rule for every script keepalived
//! runs (`vrrp_script`, notify lines, the notify FIFOs and their scripts, a virtual server's
//! scripts, `MISC_CHECK`). It is `script_user` if given (and it must exist), else
//! `keepalived_script` if that user exists, else root, which `enable_script_security`
//! refuses; a script that cannot have a user is dropped. The daemon runs scripts by the whole
//! file's settings, so they are read before any script (as keepalived's `-t`, whose checker
//! pass reads `global_defs` before its VRRP pass reads a script); its message is at the
//! checker's first such script when there is one.

use crate::diag::{Diagnostic, Diags, Pos};
use crate::host::Host;
use crate::process::Side;
use crate::tree::Node;

/// Whether scripts without a user of their own have one, and where each side first needed it.
#[derive(Debug, Default)]
pub struct DefaultUser {
    /// `script_user` given: whether that user exists.
    named: Option<bool>,
    available: bool,
    /// Where the checker, and the VRRP side, first needed it.
    first_need: (Option<Pos>, Option<Pos>),
}

impl DefaultUser {
    /// The rule `global_defs` sets (`script_user`, `enable_script_security`) for the file whose
    /// top-level statements are `nodes`.
    pub fn of_file(nodes: &[Node], host: &dyn Host) -> Self {
        let globals = || {
            nodes
                .iter()
                .filter(|n| n.name() == "global_defs")
                .flat_map(|n| n.children.iter())
        };
        // One that does not exist fails them all (keepalived never clears that failure).
        let named = globals()
            .filter(|n| n.name() == "script_user")
            .filter_map(|n| Some((n.args.first()?, n.args.get(1))))
            .map(|(u, g)| host.user_exists(&u.text, g.map(|g| &*g.text)) != Some(false))
            .fold(None, |all, exists| Some(all.unwrap_or(true) && exists));
        let secure = globals().any(|n| n.name() == "enable_script_security");
        Self {
            named,
            available: named.unwrap_or_else(|| {
                !secure || host.user_exists("keepalived_script", None) != Some(false)
            }),
            first_need: (None, None),
        }
    }

    /// Whether a script without its own user, read at `at` by `side`, can run.
    pub fn available(&mut self, side: Side, at: &Pos) -> bool {
        let first = match side {
            Side::Checker => &mut self.first_need.0,
            Side::Vrrp => &mut self.first_need.1,
        };
        first.get_or_insert_with(|| at.clone());
        self.available
    }

    /// keepalived's message when no default user could be set (a `script_user` that does not
    /// exist has its own, at its line).
    pub fn report(&self, diags: &mut Diags) {
        if self.available || self.named.is_some() {
            return;
        }
        let (checker, vrrp) = &self.first_need;
        if let Some(at) = checker.as_ref().or(vrrp.as_ref()) {
            diags.push(Diagnostic::warning(
                at,
                "Unable to set default user keepalived_script for script",
            ));
        }
    }
}
