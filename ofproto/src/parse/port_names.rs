//! Port names in flow syntax (`in_port=p1`, `output:p2`,
//! `output(port=p2,max_len=60)`, `resubmit(p1,1)`), as `ovs-ofctl` accepts
//! them: a number first, then a reserved name (`IN_PORT`, `LOCAL`, ...),
//! then a name of the switch's ports (case-sensitive, OVS
//! `ofputil_port_from_string` with a port map).
//!
//! The names are the caller's for the duration of one parse
//! ([`with_port_names`]): the daemon passes its `--port` names, the control
//! socket the ports that exist when the command arrives. The rules keep
//! the numbers, so renaming a port later changes nothing in the tables.

use std::cell::RefCell;

thread_local! {
    /// The port map of the parse running on this thread.
    static PORT_NAMES: RefCell<Vec<(String, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `parse` with `names` (name → OpenFlow port number) as the port
/// map that port names in the flow syntax resolve through.
pub fn with_port_names<R>(
    names: impl IntoIterator<Item = (String, u32)>,
    parse: impl FnOnce() -> R,
) -> R {
    struct Restore(Vec<(String, u32)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = std::mem::take(&mut self.0);
            PORT_NAMES.with(|n| *n.borrow_mut() = prev);
        }
    }
    let prev = PORT_NAMES.with(|n| n.replace(names.into_iter().collect()));
    let _restore = Restore(prev);
    parse()
}

/// The number of the port called `name` in the current port map.
pub(crate) fn lookup(name: &str) -> Option<u32> {
    PORT_NAMES.with(|n| n.borrow().iter().find(|(n, _)| n == name).map(|(_, p)| *p))
}
