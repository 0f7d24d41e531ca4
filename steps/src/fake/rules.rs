//! [`crate::kernel::Rules`] on the fake kernel: in memory, every call recorded and failable.

use super::{label, FakeKernel, EEXIST, ENOENT};
use crate::kernel::Rules;
use crate::kernel::{KernelError, Netns, PolicyRule};
use std::collections::BTreeSet;

impl Rules for FakeKernel {
    fn rule_list(&mut self, ns: &Netns) -> Result<Vec<PolicyRule>, KernelError> {
        self.call(format!("rule_list {}", label(ns)))?;
        self.check_ns(ns)?;
        Ok(self
            .state
            .rules
            .iter()
            .filter(|(n, _)| n == ns)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn rule_add(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError> {
        self.call(format!("rule_add {} {rule}", label(ns)))?;
        self.check_ns(ns)?;
        if rule.v6 && self.no_ipv6 {
            return Err(KernelError::from_errno(97, None));
        }
        if !self.state.rules.insert((ns.clone(), rule.clone())) {
            return Err(KernelError::from_errno(EEXIST, None));
        }
        Ok(())
    }

    fn rule_del(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError> {
        self.call(format!("rule_del {} {rule}", label(ns)))?;
        self.check_ns(ns)?;
        if rule.v6 && self.no_ipv6 {
            return Err(KernelError::from_errno(97, None));
        }
        // As the kernel: the fields the request gives, but not the invert flag (rule_find).
        let found = self
            .state
            .rules
            .iter()
            .find(|(n, r)| {
                n == ns
                    && r.v6 == rule.v6
                    && r.priority == rule.priority
                    && r.table == rule.table
                    && r.fwmark == rule.fwmark
                    && r.suppress_prefixlength == rule.suppress_prefixlength
            })
            .cloned();
        match found {
            Some(key) => {
                self.state.rules.remove(&key);
            }
            None => return Err(KernelError::from_errno(ENOENT, None)),
        }
        Ok(())
    }

    fn tables_in_use(&mut self, ns: &Netns) -> Result<BTreeSet<u32>, KernelError> {
        self.call(format!("tables_in_use {}", label(ns)))?;
        self.check_ns(ns)?;
        let mut out: BTreeSet<u32> = [254, 255].into();
        out.extend(
            self.state
                .routes
                .iter()
                .filter(|(n, _, _)| n == ns)
                .map(|(_, _, r)| r.table),
        );
        out.extend(
            self.state
                .unreachable
                .iter()
                .filter(|(n, _, _)| n == ns)
                .map(|(_, _, t)| *t),
        );
        for (n, r) in &self.state.rules {
            if n == ns {
                out.insert(r.table);
                out.extend(r.fwmark);
            }
        }
        Ok(out)
    }
}
