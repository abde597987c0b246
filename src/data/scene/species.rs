//! The ten bird species of the synthetic Waterbirds scene (five waterbirds, five landbirds): their class, their
//! CUB-style folder names, and the words captions use for them and for their shapes.

/// A bird species: class, folder name (CUB style, dotted) and the word captions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Species {
    Duck,
    Swan,
    Heron,
    Pelican,
    Gull,
    Sparrow,
    Finch,
    Robin,
    Owl,
    Jay,
}

impl Species {
    pub const ALL: [Species; 10] = [
        Species::Duck,
        Species::Swan,
        Species::Heron,
        Species::Pelican,
        Species::Gull,
        Species::Sparrow,
        Species::Finch,
        Species::Robin,
        Species::Owl,
        Species::Jay,
    ];

    /// 1 waterbird, 0 landbird.
    pub fn y(self) -> i64 {
        match self {
            Species::Duck | Species::Swan | Species::Heron | Species::Pelican | Species::Gull => 1,
            _ => 0,
        }
    }

    pub fn of_class(y: i64) -> Vec<Species> {
        Species::ALL
            .iter()
            .copied()
            .filter(|s| s.y() == y)
            .collect()
    }

    /// Folder name in the CUB style used by Waterbirds (`001.Black_footed_Albatross`).
    pub fn folder(self) -> String {
        let idx = Species::ALL.iter().position(|&s| s == self).unwrap_or(0) + 1;
        format!("{idx:03}.{}", self.file_stem())
    }

    pub fn file_stem(self) -> &'static str {
        match self {
            Species::Duck => "Mallard_duck",
            Species::Swan => "Mute_swan",
            Species::Heron => "Great_blue_heron",
            Species::Pelican => "Brown_pelican",
            Species::Gull => "Herring_gull",
            Species::Sparrow => "House_sparrow",
            Species::Finch => "Purple_finch",
            Species::Robin => "American_robin",
            Species::Owl => "Barn_owl",
            Species::Jay => "Blue_jay",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Species::Duck => "duck",
            Species::Swan => "swan",
            Species::Heron => "heron",
            Species::Pelican => "pelican",
            Species::Gull => "gull",
            Species::Sparrow => "sparrow",
            Species::Finch => "finch",
            Species::Robin => "robin",
            Species::Owl => "owl",
            Species::Jay => "jay",
        }
    }

    /// Phrases that describe what the drawing shows of this species' shape.
    pub fn shape_phrases(self) -> &'static [&'static str] {
        match self {
            Species::Duck => &["with a flat bill", "with a long body", "with a curved neck"],
            Species::Swan => &[
                "with a long neck",
                "with a long curved neck",
                "with a long body",
            ],
            Species::Heron => &[
                "with a long neck",
                "with long legs",
                "with a long pointed bill",
            ],
            Species::Pelican => &["with a long bill", "with a huge bill", "with a long body"],
            Species::Gull => &[
                "with long wings",
                "with a long body",
                "with a straight bill",
            ],
            Species::Sparrow => &["with a short beak", "with a round body", "with short legs"],
            Species::Finch => &[
                "with a short thick beak",
                "with a round body",
                "with a small head",
            ],
            Species::Robin => &[
                "with a round breast",
                "with a short beak",
                "with a round body",
            ],
            Species::Owl => &["with big round eyes", "with ear tufts", "with a round head"],
            Species::Jay => &["with a crest", "with a short beak", "with a long tail"],
        }
    }
}
