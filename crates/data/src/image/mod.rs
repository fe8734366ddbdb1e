//! Images as darkmagic computes on them: HWC u8 buffers (owned: [`Image`]; borrowed: [`View`]) and rectangles of them
//! ([`Region`]), PIL's resampling (`resample`) and the evaluation fit (`fit`: the shorter side
//! resized, then the centre crop). Below `data`, which decodes files into them, and `augment`,
//! which draws random transforms of them.
pub mod fit;
pub mod resample;

/// A rectangle of an image: top row, left column, height, width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub y: usize,
    pub x: usize,
    pub h: usize,
    pub w: usize,
}

impl Region {
    /// The `h` x `w` rectangle at the top left: a whole image of that size.
    pub fn whole(h: usize, w: usize) -> Region {
        Region { y: 0, x: 0, h, w }
    }
}

/// An HWC u8 image to transform: pixels, height, width, channels.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub px: &'a [u8],
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl<'a> View<'a> {
    pub fn new(px: &'a [u8], h: usize, w: usize, c: usize) -> Self {
        debug_assert_eq!(px.len(), h * w * c, "an h x w x c image");
        View { px, h, w, c }
    }

    /// The whole image as a region.
    pub fn whole(&self) -> Region {
        Region::whole(self.h, self.w)
    }
}

/// An owned HWC u8 image: pixels, height, width, channels (what a decoder gives and a PNG
/// writer takes).
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub px: Vec<u8>,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Image {
    /// The image to read from.
    pub fn view(&self) -> View<'_> {
        View::new(&self.px, self.h, self.w, self.c)
    }
}
