//! The section header of the notes: `.shstrtab` and the section header table grow where the file
//! need not grow for them.

use super::{align, Editor};
use crate::gap;
use crate::{Output, Refusal, SECTION_NAME};
use ldcache_elf::image::Section;

impl<O: Output> Editor<'_, O> {
    /// Appends the section header of the notes, growing `.shstrtab` by its name if needed; or
    /// rewrites the one a replaced note left, where it is. Files without section headers get none.
    pub(super) fn add_section(&mut self, mut section: Section) -> Result<(), Refusal> {
        if self.image.sections.is_empty() {
            return Ok(());
        }
        let left = (0..self.image.sections.len())
            .find(|&i| self.image.section_name(self.old, i) == SECTION_NAME);
        if let Some(index) = left {
            section.name = self.image.sections[index].name;
            self.image.sections[index] = section;
            return Ok(());
        }
        let names = self.image.sections[self.image.shstrndx];
        let table = &self.old[names.offset as usize..][..names.size as usize];
        let mut needle = SECTION_NAME.to_vec();
        needle.push(0);
        // A suffix of a longer name serves too, as in any string table.
        let existing = table
            .windows(needle.len())
            .position(|w| w == needle.as_slice());
        let mut new_names = None;
        section.name = match existing {
            Some(at) => at as u32,
            None => {
                let mut grown = table.to_vec();
                let at = grown.len();
                grown.extend_from_slice(&needle);
                new_names = Some(grown);
                at as u32
            }
        };
        self.place_section_tables(new_names);
        self.image.sections.push(section);
        Ok(())
    }

    /// Makes room for one more section header, and writes `.shstrtab` when it grew, where the file
    /// need not grow for them: rewritten where they are when they end the file; else each where it
    /// is when the bytes after it are free, or in zero padding nothing uses; else at the end.
    fn place_section_tables(&mut self, new_names: Option<Vec<u8>>) {
        if self.tables_are_tail(new_names.is_some()) {
            let names = self.image.sections[self.image.shstrndx];
            let start = match new_names {
                Some(_) => names.offset,
                None => self.image.shoff,
            };
            let mut at = start;
            if let Some(grown) = new_names {
                self.out.set_len(at as usize);
                at = self.write_names(grown, at);
            }
            self.image.shoff = align(at, self.image.word());
            return;
        }
        let old_names = self.image.sections[self.image.shstrndx];
        if let Some(grown) = new_names {
            let at = self.room(old_names.offset, old_names.size, grown.len() as u64, 1);
            self.write_names(grown, at);
            if at != old_names.offset {
                self.vacated.push((old_names.offset, old_names.size));
            }
        }
        let entry = self.image.shentsize;
        let old_size = entry * self.image.sections.len() as u64;
        let (old_shoff, word) = (self.image.shoff, self.image.word());
        let shoff = self.room(old_shoff, old_size, old_size + entry, word);
        if shoff != old_shoff {
            self.vacated.push((old_shoff, old_size));
        }
        self.image.shoff = shoff;
    }

    /// Whether `.shstrtab` (when `names_grow`) and the section header table, in that order, end the
    /// file, with nothing else past the first of them.
    fn tables_are_tail(&self, names_grow: bool) -> bool {
        let names_index = self.image.shstrndx;
        let names = self.image.sections[names_index];
        let old_sections = &self.image.sections;
        let old_table_end = self.image.shoff + self.image.shentsize * old_sections.len() as u64;
        let start = if names_grow {
            names.offset
        } else {
            self.image.shoff
        };
        old_table_end == self.old.len() as u64
            && self.out.len() == self.old.len()
            && names.offset + names.size <= self.image.shoff
            && self
                .image
                .segments
                .iter()
                .all(|s| s.filesz == 0 || s.file_end() <= start)
            && old_sections.iter().enumerate().all(|(i, s)| {
                s.file_size() == 0 || s.offset + s.size <= start || (i == names_index && names_grow)
            })
    }

    /// Where `len` bytes that are not loaded go, now `size` bytes at `offset`: there when the bytes
    /// after them are zero and unused, else in zero padding nothing uses (sparing the room notes
    /// grow into if possible), else after everything.
    fn room(&mut self, offset: u64, size: u64, len: u64, align_to: u64) -> u64 {
        if gap::is_unused(&self.image, &self.out, offset + size, offset + len) {
            return offset;
        }
        let unused = |spare_gaps| gap::unused(&self.image, &self.out, len, align_to, spare_gaps);
        if let Some(at) = unused(true).or_else(|| unused(false)) {
            return at;
        }
        let at = align(self.out.len() as u64, align_to);
        self.out.set_len(at as usize);
        at
    }

    /// Copies the grown `.shstrtab` to `at` (the file grows when it ends there) and points the
    /// section header at it; returns where it ends.
    fn write_names(&mut self, grown: Vec<u8>, at: u64) -> u64 {
        let end = at + grown.len() as u64;
        self.out.write(at as usize, &grown);
        let names = &mut self.image.sections[self.image.shstrndx];
        names.offset = at;
        names.size = grown.len() as u64;
        end
    }
}
