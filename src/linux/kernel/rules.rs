//! The real kernel's routing policy rules (rtnetlink).

use crate::linux::{rtnl, LinuxKernel};
use std::collections::BTreeSet;
use wg_exec_steps::kernel::Rules;
use wg_exec_steps::{KernelError, Netns, PolicyRule};

impl Rules for LinuxKernel {
    fn rule_list(&mut self, ns: &Netns) -> Result<Vec<PolicyRule>, KernelError> {
        rtnl::rules(self.route(ns)?)
    }

    fn rule_add(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError> {
        rtnl::add_rule(self.route(ns)?, rule)
    }

    fn rule_del(&mut self, ns: &Netns, rule: &PolicyRule) -> Result<(), KernelError> {
        rtnl::del_rule(self.route(ns)?, rule)
    }

    fn tables_in_use(&mut self, ns: &Netns) -> Result<BTreeSet<u32>, KernelError> {
        rtnl::tables_in_use(self.route(ns)?)
    }
}
