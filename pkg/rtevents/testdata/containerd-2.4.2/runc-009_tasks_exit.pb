
•ÅÖØÌŸ´Âk8s.io/tasks/exit"¸
containerd.events.TaskExit™
@b3e72b75828fcaa5b6749053abbe4fd753e990ebc7baae2821eb8a73545f0bb6@b3e72b75828fcaa5b6749053abbe4fd753e990ebc7baae2821eb8a73545f0bb6º‹* ‰*•ÅÖØï¥Æ½