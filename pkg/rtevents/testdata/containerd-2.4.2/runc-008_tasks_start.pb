
ï≈÷ÿµè›òk8s.io/tasks/start"e
containerd.events.TaskStartF
@b3e72b75828fcaa5b6749053abbe4fd753e990ebc7baae2821eb8a73545f0bb6∫ã*