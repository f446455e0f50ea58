//! Reading a document, now or as at some heads, without ever panicking.
//!
//! Document contents come from peers and may be hostile: every accessor
//! returns an `Option` or `Result` and treats a value of the wrong type the
//! same as an absent one, so render and validate cannot be crashed by data.

use automerge::{ChangeHash, ObjId, ObjType, Prop, ReadDoc, ScalarValue, TextEncoding, Value};

/// A document seen at given heads, or at its current state.
pub(crate) struct View<'a, R> {
    doc: &'a R,
    heads: Option<&'a [ChangeHash]>,
}

impl<'a, R: ReadDoc> View<'a, R> {
    /// Sees `doc` at `heads` (current state when `None`).
    pub(crate) fn new(doc: &'a R, heads: Option<&'a [ChangeHash]>) -> Self {
        View { doc, heads }
    }

    /// The winning value at a key or index.
    pub(crate) fn get<P: Into<Prop>>(&self, obj: &ObjId, prop: P) -> Option<(Value<'a>, ObjId)> {
        let doc: &'a R = self.doc;
        let got = match self.heads {
            Some(heads) => doc.get_at(obj, prop, heads),
            None => doc.get(obj, prop),
        };
        got.ok().flatten()
    }

    /// Every concurrent value at a key or index (so validation sees the losers of a conflict too).
    pub(crate) fn get_all<P: Into<Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
    ) -> Result<Vec<(Value<'a>, ObjId)>, automerge::AutomergeError> {
        let doc: &'a R = self.doc;
        match self.heads {
            Some(heads) => doc.get_all_at(obj, prop, heads),
            None => doc.get_all(obj, prop),
        }
    }

    /// The keys of a map.
    pub(crate) fn keys(&self, obj: &ObjId) -> Vec<String> {
        match self.heads {
            Some(heads) => self.doc.keys_at(obj, heads).collect(),
            None => self.doc.keys(obj).collect(),
        }
    }

    /// The length of a list, or of a text in the document's text encoding.
    pub(crate) fn length(&self, obj: &ObjId) -> usize {
        match self.heads {
            Some(heads) => self.doc.length_at(obj, heads),
            None => self.doc.length(obj),
        }
    }

    /// The content of a text object.
    pub(crate) fn text(&self, obj: &ObjId) -> Result<String, automerge::AutomergeError> {
        match self.heads {
            Some(heads) => self.doc.text_at(obj, heads),
            None => self.doc.text(obj),
        }
    }

    /// An upper bound of a text's size in bytes that needs no copy of the text, if there is one.
    pub(crate) fn text_bytes_bound(&self, obj: &ObjId) -> Option<usize> {
        let per_unit = match self.doc.text_encoding() {
            TextEncoding::Utf8CodeUnit => 1,
            TextEncoding::UnicodeCodePoint => 4,
            TextEncoding::Utf16CodeUnit => 3,
            TextEncoding::GraphemeCluster => return None,
        };
        self.length(obj).checked_mul(per_unit)
    }

    /// The object id at a key if it holds an object of type `ty`.
    pub(crate) fn obj<P: Into<Prop>>(&self, obj: &ObjId, prop: P, ty: ObjType) -> Option<ObjId> {
        match self.get(obj, prop)? {
            (Value::Object(t), id) if t == ty => Some(id),
            _ => None,
        }
    }

    /// The string at a key, if it is one.
    pub(crate) fn str<P: Into<Prop>>(&self, obj: &ObjId, prop: P) -> Option<String> {
        match self.get(obj, prop)? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        }
    }
}
