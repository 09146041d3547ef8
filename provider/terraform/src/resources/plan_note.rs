//! The stored form of a workload's plan note (see the ledger's plan notes): what a plan decided,
//! for the apply-time plan of the same run to repeat.
//!
//! Binary, read in place: a note is read once per apply-time plan and is most of what the ledger
//! stores per workload, so its size is pages written, read and deleted. The text form before it
//! (JSON of base64 strings) held each noted attribute twice, once on its own and once in the
//! planned state, and grew every byte by a third: 3.7 KB for a cloud workload with three
//! alternatives, a page of its own. Now a note that records the whole plan holds only the
//! planned state, and its noted attributes are read from it ([`tfvalue::msgpack_object_field`]).
//!
//! Layout: the magic `hn1`; the inputs digest (one length byte, then the text); a flags byte
//! (1: records the plan, 2: the plan replaces); when it records the plan, the request digest
//! (one length byte, the text) and the planned state's msgpack (four length bytes, little
//! endian, then the bytes); otherwise the noted attributes, a count byte, then each one's name
//! (one length byte, the text) and msgpack (four length bytes, the bytes). Anything else,
//! cut short or with bytes left over, is not a note: the plan decides afresh.

/// The first bytes of every note in this form (the text notes began with `{`).
const MAGIC: &[u8; 3] = b"hn1";
const RECORDS_PLAN: u8 = 1;
const REPLACES: u8 = 2;

/// A plan note, borrowed from its bytes.
#[derive(Debug, PartialEq)]
pub(crate) struct PlanNote<'a> {
    /// The digest of the placement inputs the decision was made for.
    pub inputs: &'a str,
    /// The whole plan, when the note records it for the apply-time repeat of its request.
    pub plan: Option<RecordedPlan<'a>>,
    /// The noted attributes' msgpack by name, when the note does not record the plan.
    attributes: Vec<(&'a str, &'a [u8])>,
}

/// The plan a note records, as it was sent.
#[derive(Debug, PartialEq, Clone, Copy)]
pub(crate) struct RecordedPlan<'a> {
    /// The digest of the request it answered.
    pub request: &'a str,
    pub replaces: bool,
    /// The planned state's msgpack.
    pub planned: &'a [u8],
}

impl<'a> PlanNote<'a> {
    /// A note of the decision alone (the noted attributes, each with its msgpack).
    pub fn decision(inputs: &'a str, attributes: Vec<(&'a str, &'a [u8])>) -> Self {
        PlanNote {
            inputs,
            plan: None,
            attributes,
        }
    }

    /// A note that records the whole plan: its noted attributes are the planned state's own.
    pub fn recording(inputs: &'a str, plan: RecordedPlan<'a>) -> Self {
        PlanNote {
            inputs,
            plan: Some(plan),
            attributes: Vec::new(),
        }
    }

    /// The msgpack of the noted attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&'a [u8]> {
        match &self.plan {
            Some(plan) => tfvalue::msgpack_object_field(plan.planned, name),
            None => self
                .attributes
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, bytes)| *bytes),
        }
    }

    /// The note's bytes. `None` when a part does not fit its length field (a digest or a name
    /// over 255 bytes, more than 255 attributes, a value over 4 GiB): such a note is not written.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        let size = MAGIC.len()
            + 2
            + self.inputs.len()
            + self
                .plan
                .map_or(0, |p| 5 + p.request.len() + p.planned.len())
            + self
                .attributes
                .iter()
                .map(|(n, b)| 5 + n.len() + b.len())
                .sum::<usize>()
            + 1;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(MAGIC);
        short(&mut out, self.inputs.as_bytes())?;
        match &self.plan {
            Some(plan) => {
                out.push(RECORDS_PLAN | if plan.replaces { REPLACES } else { 0 });
                short(&mut out, plan.request.as_bytes())?;
                long(&mut out, plan.planned)?;
            }
            None => {
                out.push(0);
                out.push(u8::try_from(self.attributes.len()).ok()?);
                for (name, bytes) in &self.attributes {
                    short(&mut out, name.as_bytes())?;
                    long(&mut out, bytes)?;
                }
            }
        }
        Some(out)
    }

    /// Reads a note; `None` when `bytes` are not one (a text note of an earlier build, say).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut r = Reader(bytes.strip_prefix(MAGIC)?);
        let inputs = r.text()?;
        let flags = r.byte()?;
        let note = if flags & RECORDS_PLAN != 0 {
            let request = r.text()?;
            let planned = r.long()?;
            PlanNote::recording(
                inputs,
                RecordedPlan {
                    request,
                    replaces: flags & REPLACES != 0,
                    planned,
                },
            )
        } else {
            let count = r.byte()?;
            let mut attributes = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                attributes.push((r.text()?, r.long()?));
            }
            PlanNote::decision(inputs, attributes)
        };
        r.0.is_empty().then_some(note)
    }
}

fn short(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.push(u8::try_from(bytes.len()).ok()?);
    out.extend_from_slice(bytes);
    Some(())
}

fn long(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend_from_slice(&u32::try_from(bytes.len()).ok()?.to_le_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

/// The unread rest of a note.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = self.byte()?;
        std::str::from_utf8(self.take(usize::from(n))?).ok()
    }

    fn long(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(len).ok()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tfvalue::{ObjectType, Type, Value};

    fn planned_bytes() -> Vec<u8> {
        let ty = Type::Object(ObjectType::new([
            ("alternatives", Type::list(Type::String)),
            ("cpu", Type::Number),
            ("placement", Type::String),
        ]));
        tfvalue::encode_msgpack(
            &Value::object([
                ("alternatives", Value::list([Value::string("b")])),
                ("cpu", Value::from(2i64)),
                ("placement", Value::string("a")),
            ]),
            &ty,
        )
        .unwrap()
    }

    #[test]
    fn a_decision_note_reads_back_its_attributes() {
        let note = PlanNote::decision(
            "abc",
            vec![
                ("placement", &[0xa1, b'a'][..]),
                ("alternatives", &[0xc0][..]),
            ],
        );
        let bytes = note.to_bytes().unwrap();
        let back = PlanNote::parse(&bytes).unwrap();
        assert_eq!(back, note);
        assert_eq!(back.inputs, "abc");
        assert_eq!(back.plan, None);
        assert_eq!(back.attribute("placement"), Some(&[0xa1, b'a'][..]));
        assert_eq!(back.attribute("alternatives"), Some(&[0xc0][..]));
        assert_eq!(back.attribute("edge_assignments"), None);
    }

    #[test]
    fn a_recording_note_reads_its_attributes_from_the_planned_state() {
        let planned = planned_bytes();
        for replaces in [false, true] {
            let note = PlanNote::recording(
                "abc",
                RecordedPlan {
                    request: "f00d",
                    replaces,
                    planned: &planned,
                },
            );
            let bytes = note.to_bytes().unwrap();
            let back = PlanNote::parse(&bytes).unwrap();
            assert_eq!(back, note);
            let plan = back.plan.unwrap();
            assert_eq!((plan.request, plan.replaces), ("f00d", replaces));
            assert_eq!(plan.planned, &planned[..]);
            assert_eq!(back.attribute("placement"), Some(&[0xa1, b'a'][..]));
            assert_eq!(
                back.attribute("alternatives"),
                Some(&[0x91, 0xa1, b'b'][..])
            );
            assert_eq!(back.attribute("missing"), None);
        }
    }

    #[test]
    fn what_is_not_a_whole_note_is_none() {
        let planned = planned_bytes();
        let bytes = PlanNote::recording(
            "abc",
            RecordedPlan {
                request: "f00d",
                replaces: true,
                planned: &planned,
            },
        )
        .to_bytes()
        .unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(PlanNote::parse(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(PlanNote::parse(&longer), None, "bytes left over");
        // A text note of an earlier build, and a length past the end.
        assert_eq!(PlanNote::parse(br#"{"inputs":"abc"}"#), None);
        assert_eq!(PlanNote::parse(b"hn1\x03ab"), None);
        let decision = PlanNote::decision("i", vec![("n", &[0xc0][..])])
            .to_bytes()
            .unwrap();
        for cut in 0..decision.len() {
            assert_eq!(PlanNote::parse(&decision[..cut]), None, "cut at {cut}");
        }
        // Not UTF-8 where text goes.
        assert_eq!(PlanNote::parse(b"hn1\x01\xff\x00\x00"), None);
    }

    #[test]
    fn parts_too_long_for_their_length_field_make_no_note() {
        let long_name = "x".repeat(256);
        assert_eq!(PlanNote::decision(&long_name, vec![]).to_bytes(), None);
        let many: Vec<(&str, &[u8])> = (0..256).map(|_| ("n", &[0xc0][..])).collect();
        assert_eq!(PlanNote::decision("i", many).to_bytes(), None);
        let most: Vec<(&str, &[u8])> = (0..255).map(|_| ("n", &[0xc0][..])).collect();
        let bytes = PlanNote::decision("i", most).to_bytes().unwrap();
        assert_eq!(PlanNote::parse(&bytes).unwrap().attributes.len(), 255);
    }
}
