//! The real kernel's nftables (`nft -f -`).

use crate::linux::{child, LinuxKernel};
use wg_exec_steps::kernel::Nftables;
use wg_exec_steps::{KernelError, Netns, NftTable};

impl Nftables for LinuxKernel {
    fn nft_apply(&mut self, ns: &Netns, script: &str) -> Result<(), KernelError> {
        // The child is forked from this thread, in the namespace it has entered.
        let _inside = self.enter(ns)?;
        child::nft(script)
    }

    fn nft_tables(&mut self, ns: &Netns) -> Result<Vec<NftTable>, KernelError> {
        let _inside = self.enter(ns)?;
        Ok(child::nft_tables()?
            .into_iter()
            .map(|(family, name)| NftTable { family, name })
            .collect())
    }
}
