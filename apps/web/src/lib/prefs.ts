import { createValueStore } from './value-store'

const UTC_KEY = 'stdops.utc'

/** Whether times show in UTC rather than the user's zone: the user's choice, kept in this browser. */
export const utcPreference = createValueStore<boolean>(readUtc())

function readUtc(): boolean {
  try {
    return typeof localStorage !== 'undefined' && localStorage.getItem(UTC_KEY) === '1'
  } catch {
    return false
  }
}

utcPreference.subscribe(() => {
  try {
    localStorage.setItem(UTC_KEY, utcPreference.get() ? '1' : '0')
  } catch {
    // storage may be unavailable (private mode): the choice lasts for this page only
  }
})
