//! Failing the fake kernel at every call of a rich up plan: the machine must end exactly as it
//! started, and the calls must be exactly the forward ones up to the failure followed by the
//! undo of everything done, newest first.

mod support;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use support::rich::{fresh_kernel, rich};
use wg_exec::executor::NoWatch;
use wg_exec::{executor, plan};
use wg_exec_steps::KernelError;

/// One step of the plan: its forward calls, its rollback calls, and what it undoes itself
/// when its call number `i` (0-based within the step) fails.
struct Expect {
    step: &'static str,
    forward: Vec<&'static str>,
    rollback: Vec<&'static str>,
    partial: fn(usize) -> Vec<&'static str>,
}

fn none(_: usize) -> Vec<&'static str> {
    vec![]
}

fn expected_steps() -> Vec<Expect> {
    vec![
        Expect {
            step: "generate key file",
            forward: vec![
                "file_exists /keys/wg0.key",
                "generate_key_file /keys/wg0.key",
            ],
            rollback: vec!["remove_file /keys/wg0.key"],
            partial: none,
        },
        Expect {
            step: "modprobe",
            forward: vec!["modprobe wireguard"],
            rollback: vec![],
            partial: none,
        },
        Expect {
            step: "pre_setup",
            forward: vec!["run_hook wg0 \"echo pre $DEVICE\""],
            rollback: vec![],
            partial: none,
        },
        Expect {
            step: "link add",
            forward: vec!["link_add underlay wg0 kernel"],
            rollback: vec!["link_del underlay wg0"],
            partial: none,
        },
        Expect {
            step: "netns move",
            forward: vec!["link_set_netns underlay wg0 tunnel"],
            rollback: vec!["link_set_netns tunnel wg0 underlay"],
            partial: none,
        },
        Expect {
            step: "mtu",
            forward: vec!["link_mtu tunnel wg0", "link_set_mtu tunnel wg0 1380"],
            rollback: vec!["link_set_mtu tunnel wg0 1420"],
            partial: none,
        },
        Expect {
            step: "addresses",
            forward: vec![
                "addr_add tunnel wg0 192.0.2.1/24",
                "addr_add tunnel wg0 2001:db8::1/64",
            ],
            rollback: vec![
                "addr_del tunnel wg0 2001:db8::1/64",
                "addr_del tunnel wg0 192.0.2.1/24",
            ],
            partial: |i| match i {
                1 => vec!["addr_del tunnel wg0 192.0.2.1/24"],
                _ => vec![],
            },
        },
        Expect {
            step: "key",
            forward: vec![
                "read_secret_file /keys/wg0.key",
                "wg_set_device tunnel wg0 key=set port=Some(51820) fwmark=Some(7235960)",
            ],
            rollback: vec!["wg_clear_device tunnel wg0"],
            partial: none,
        },
        Expect {
            step: "up",
            forward: vec!["link_set_up tunnel wg0 up"],
            rollback: vec!["link_set_up tunnel wg0 down"],
            partial: none,
        },
        // post_setup where the NixOS module runs postSetup: right after the link is up.
        Expect {
            step: "post_setup",
            forward: vec!["run_hook wg0 \"echo post\\ntrue\""],
            rollback: vec![],
            partial: none,
        },
        Expect {
            step: "peer set",
            forward: vec![
                "read_secret_file /keys/psk",
                "resolve_endpoints underlay peer1.example:51820 203.0.113.7:51820",
                "wg_set_peers tunnel wg0 3",
            ],
            rollback: vec!["wg_remove_peers tunnel wg0 3"],
            partial: |i| match i {
                2 => vec!["wg_remove_peers tunnel wg0 3"],
                _ => vec![],
            },
        },
        Expect {
            step: "route",
            forward: vec!["route_replace tunnel wg0 4"],
            rollback: vec!["route_del tunnel wg0 4"],
            // A failed batch deletes all its routes: which went in is not always known.
            partial: |_| vec!["route_del tunnel wg0 4"],
        },
    ]
}

#[test]
fn a_successful_up_makes_exactly_the_expected_calls() {
    let cfg = rich();
    let mut k = fresh_kernel();
    let mut steps = plan::up(&cfg);
    let names: Vec<&str> = steps.iter().map(|s| s.name()).collect();
    let expect = expected_steps();
    assert_eq!(names, expect.iter().map(|e| e.step).collect::<Vec<_>>());
    executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap();
    let forward: Vec<&str> = expect.iter().flat_map(|e| e.forward.clone()).collect();
    assert_eq!(k.calls, forward);
    // The result: one link in tunnel with both addresses, three peers, five routes, a key file.
    assert_eq!(k.state.links.len(), 1);
    let link = k.state.links.values().next().unwrap();
    assert_eq!(
        (link.mtu, link.up, link.addrs.len(), link.peers.len()),
        (1380, true, 2, 3)
    );
    assert_eq!((link.listen_port, link.fwmark), (51820, 0x6e6978));
    assert_eq!(k.state.routes.len(), 4);
    assert!(k
        .state
        .routes
        .iter()
        .all(|(_, _, r)| r.table == 1234 && r.metric == Some(50)));
    assert!(k.state.files.contains_key(Path::new("/keys/wg0.key")));
}

#[test]
fn failing_at_every_call_leaves_the_machine_as_it_was() {
    let cfg = rich();
    let expect = expected_steps();
    let total: usize = expect.iter().map(|e| e.forward.len()).sum();
    let before = fresh_kernel().state;
    let mut checked = 0;
    for n in 1..=total {
        let mut k = fresh_kernel();
        k.fail_call(n, KernelError::from_errno(1, Some("injected")));
        let mut steps = plan::up(&cfg);
        let result = executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch);

        // Which step holds call n, and where in it.
        let mut seen = 0;
        let (failing, within) = expect
            .iter()
            .enumerate()
            .find_map(|(i, e)| {
                let range = seen..seen + e.forward.len();
                seen += e.forward.len();
                range.contains(&(n - 1)).then(|| (i, n - 1 - range.start))
            })
            .unwrap();
        if expect[failing].step == "modprobe" {
            // modprobe failures are tolerated, as `modprobe wireguard || true`.
            result.expect("up goes on when modprobe fails");
            continue;
        }
        let err = result.expect_err("an injected failure fails the up");
        assert!(!err.incomplete(), "call {n}: {err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("failed at step '{}'", expect[failing].step)),
            "call {n}: {text}"
        );
        assert!(
            text.contains("injected: Operation not permitted (os error 1)"),
            "{text}"
        );

        let mut calls: Vec<&str> = expect[..failing]
            .iter()
            .flat_map(|e| e.forward.clone())
            .collect();
        calls.extend(&expect[failing].forward[..=within]);
        calls.extend((expect[failing].partial)(within));
        for e in expect[..failing].iter().rev() {
            calls.extend(&e.rollback);
        }
        assert_eq!(k.calls, calls, "calls when call {n} fails");
        assert_eq!(k.state, before, "state after call {n} failed");
        checked += 1;
    }
    assert_eq!(checked, total - 1);
}

#[test]
fn a_failing_rollback_is_reported_and_marks_the_result_incomplete() {
    let cfg = rich();
    let mut k = fresh_kernel();
    // Fail the route step (call 18), then the rollback of the link add (the 9th undo call).
    k.fail_call(18, KernelError::from_errno(22, Some("injected")));
    k.fail_call(27, KernelError::from_errno(16, None));
    let mut steps = plan::up(&cfg);
    let err = executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap_err();
    assert_eq!(k.calls[26], "link_del underlay wg0");
    assert!(err.incomplete());
    assert_eq!(
        err.to_string(),
        "failed at step 'route' (4 routes via wg0 in netns tunnel): replace route 198.51.100.0/24 table 1234 metric 50 dev wg0 in netns tunnel (and 3 more failed: 2001:db8:1::/48 (injected: Invalid argument (os error 22)), 203.0.113.7/32 (injected: Invalid argument (os error 22)) and 198.18.0.0/15 (injected: Invalid argument (os error 22))): injected: Invalid argument (os error 22); \
         rolled back: peer set, up, key, addresses, mtu, netns move and generate key file; \
         ROLLBACK INCOMPLETE, left behind:\n  - step 'link add' (wg0 in netns underlay): delete wg0 in netns underlay: Device or resource busy (os error 16)"
    );
}

#[test]
fn a_link_that_cannot_move_back_is_deleted_where_it_is() {
    let cfg = rich();
    let mut k = fresh_kernel();
    let before = k.state.clone();
    k.fail_call(18, KernelError::from_errno(22, Some("injected")));
    k.fail_call(26, KernelError::from_errno(16, None));
    let mut steps = plan::up(&cfg);
    let err = executor::up(&mut steps, &mut k, &AtomicBool::new(false), &mut NoWatch).unwrap_err();
    assert!(!err.incomplete(), "{err}");
    assert_eq!(
        &k.calls[25..],
        [
            "link_set_netns tunnel wg0 underlay",
            "link_del tunnel wg0",
            "link_del underlay wg0",
            "remove_file /keys/wg0.key"
        ]
    );
    assert_eq!(k.state, before);
}

#[test]
fn a_signal_between_steps_rolls_everything_back() {
    let cfg = rich();
    let mut k = fresh_kernel();
    let before = k.state.clone();
    let mut steps = plan::up(&cfg);
    let flag = AtomicBool::new(true);
    let err = executor::up(&mut steps, &mut k, &flag, &mut NoWatch).unwrap_err();
    assert_eq!(
        err.to_string(),
        "interrupted by a signal; nothing had been changed yet"
    );
    assert!(k.calls.is_empty());
    assert_eq!(k.state, before);
}

#[test]
fn down_goes_on_past_failures_and_succeeds_when_the_link_is_gone() {
    let cfg = rich();
    let mut k = fresh_kernel();
    executor::up(
        &mut plan::up(&cfg),
        &mut k,
        &AtomicBool::new(false),
        &mut NoWatch,
    )
    .unwrap();
    let up_calls = k.calls.len();
    // pre_shutdown fails; the link is still deleted and post_shutdown still runs.
    k.fail_call(up_calls + 1, KernelError::new("hook exited with status 1"));
    let failures = executor::down(
        &mut plan::down_from_config(&cfg, false),
        &mut k,
        &mut NoWatch,
    );
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].step, wg_exec_steps::StepKind::PreShutdown);
    assert_eq!(
        &k.calls[up_calls..],
        [
            "run_hook wg0 \"echo pre-down\"",
            "link_del tunnel wg0",
            "run_hook wg0 \"echo post-down\""
        ]
    );
    assert!(k.state.links.is_empty() && k.state.routes.is_empty());
    // Again: nothing to delete, and that is success.
    let failures = executor::down(
        &mut plan::down_from_config(&cfg, false),
        &mut k,
        &mut NoWatch,
    );
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn down_finds_a_link_an_interrupted_up_left_in_the_socket_namespace() {
    let cfg = rich();
    let mut k = fresh_kernel();
    use wg_exec_steps::kernel::prelude::*;
    k.link_add(
        &wg_exec_steps::Netns::Named("underlay".into()),
        "wg0",
        &wg_exec_steps::Backend::Kernel,
    )
    .unwrap();
    let failures = executor::down(
        &mut plan::down_from_config(&cfg, false),
        &mut k,
        &mut NoWatch,
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert!(k.state.links.is_empty());
    assert!(k.calls.contains(&"link_del underlay wg0".to_string()));
}
